//! The config editor: typed changes (to clients, providers and groups) applied to the config
//! file the router serves, keeping the operator's comments, ordering and formatting
//! everywhere outside the edited node. A change is planned on the parsed config (which entry,
//! at which index) as a few [`Op`]s on the file's tree; `yaml` makes them on a lossless YAML
//! tree (`yaml-edit`), `json` splices them into the JSON text. The result is compiled as a
//! reload would compile it before anything is written, the write is atomic (a temporary file
//! in the same folder, fsynced, renamed over the file, the file's mode kept), and editors in
//! any process take turns through a lock file beside the config. The router's watcher applies
//! the change.

mod clients;
mod groups;
mod json;
mod providers;
mod yaml;

pub use clients::{ClientEdit, NewClient};
pub use groups::{GroupEdit, NewGroup, NewModel};
pub use providers::{NewKey, NewProvider, ProviderEdit};

use router_core::{Format, Router, Source};
use std::io::Write as _;
use std::path::{Path, PathBuf};

/// Why an edit was refused; the file is untouched in every case.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EditError {
    /// The entry named is not in the config (404).
    NotFound(String),
    /// The edit cannot be made to this file: a name already taken, a provider still in use, a
    /// read-only file, not the file the router serves (409).
    Conflict(String),
    /// The edit is not one that can be made, or the edited config would not load: the
    /// problems, located (422).
    Invalid(String),
    /// The file could not be read or written (500).
    Io(String),
}

impl std::fmt::Display for EditError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::NotFound(m) | Self::Conflict(m) | Self::Invalid(m) | Self::Io(m) => {
                f.write_str(m)
            }
        }
    }
}

/// One change to a config file, of any kind.
#[derive(Debug, Clone)]
pub enum Edit {
    /// To the named clients.
    Client(ClientEdit),
    /// To the providers and their keys.
    Provider(ProviderEdit),
    /// To the groups and their models.
    Group(GroupEdit),
}

/// A value written into the config.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Node {
    Str(String),
    /// A word of the config's vocabulary (a strategy, a provider type): written bare in YAML.
    Word(String),
    Int(u64),
    Float(f64),
    Bool(bool),
    /// Its entries in the order written.
    Map(Vec<(String, Node)>),
    List(Vec<Node>),
}

impl Node {
    /// A map of the entries whose value is given, in order.
    pub(crate) fn map<const N: usize>(entries: [(&str, Option<Node>); N]) -> Node {
        Node::Map(
            entries
                .into_iter()
                .filter_map(|(k, v)| v.map(|v| (k.to_string(), v)))
                .collect(),
        )
    }

    /// A list of strings.
    pub(crate) fn strs(items: &[String]) -> Node {
        Node::List(items.iter().map(|s| Node::Str(s.clone())).collect())
    }
}

/// A step down the config's tree.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Step {
    /// The value of a mapping's key.
    Key(String),
    /// A list's item.
    Item(usize),
}

/// Where a value is: the steps from the top.
pub(crate) type At = Vec<Step>;

/// `at` and then the key `key`.
pub(crate) fn under(at: &At, key: &str) -> At {
    let mut path = at.clone();
    path.push(Step::Key(key.to_string()));
    path
}

/// The `index`-th entry of the top-level list `list`.
pub(crate) fn entry(list: &str, index: usize) -> At {
    vec![Step::Key(list.to_string()), Step::Item(index)]
}

/// One change to the file's tree.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Op {
    /// Sets the value at this path (its last step a key, added at the end of its mapping when
    /// missing).
    Set(At, Node),
    /// Removes the key or the item at this path.
    Remove(At),
    /// Appends to the list at this path (its last step a key), written when missing.
    Push(At, Node),
    /// Writes the value at this path, a key written as a string, as `{key: <it>}`; a mapping
    /// stays as it is.
    Wrap(At),
}

/// A change planned on the parsed config: the ops, and what they do in words.
pub(crate) struct Plan {
    pub(crate) ops: Vec<Op>,
    pub(crate) said: String,
}

/// Applies `edit` to the config file at `path` and says what changed.
pub fn edit_file(path: &Path, edit: &Edit) -> Result<String, EditError> {
    let format = Format::of_path(path);
    let _turn = Turn::take(path)?;
    let text = std::fs::read_to_string(path)
        .map_err(|e| EditError::Io(format!("{}: {e}", path.display())))?;
    let (edited, said) = apply(&text, format, edit)?;
    if edited != text {
        write_atomically(path, &edited)?;
    }
    Ok(format!("{said} in {}", path.display()))
}

/// `text` (a config in `format`) with `edit` made, checked to load, and what was done.
pub(crate) fn apply(
    text: &str,
    format: Format,
    edit: &Edit,
) -> Result<(String, String), EditError> {
    let config = Source::from_text(text, format)
        .parse()
        .map_err(|e| EditError::Invalid(format!("the config does not load as it is:\n{e}")))?;
    let plan = match edit {
        Edit::Client(e) => clients::plan(&config, e)?,
        Edit::Provider(e) => providers::plan(&config, e)?,
        Edit::Group(e) => groups::plan(&config, e)?,
    };
    let mut edited = text.to_string();
    for op in &plan.ops {
        edited = match format {
            Format::Yaml => yaml::apply(&edited, op)?,
            Format::Json => json::apply(&edited, op)?,
        };
    }
    if let Err(e) = Router::from_source(&Source::from_text(&edited, format)) {
        return Err(EditError::Invalid(format!(
            "the edit would make the config unusable; the file is unchanged:\n{e}"
        )));
    }
    Ok((edited, plan.said))
}

/// This editor's turn at the file: an exclusive lock on `<file>.lock` beside it, held until
/// dropped. Editors in other processes wait for it.
struct Turn(std::fs::File);

impl Turn {
    fn take(path: &Path) -> Result<Self, EditError> {
        let lock_path = sibling(path, ".lock");
        let file = std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&lock_path)
            .map_err(|e| EditError::Io(format!("{}: {e}", lock_path.display())))?;
        fs4::fs_std::FileExt::lock_exclusive(&file)
            .map_err(|e| EditError::Io(format!("{}: {e}", lock_path.display())))?;
        Ok(Self(file))
    }
}

impl Drop for Turn {
    fn drop(&mut self) {
        let _ = fs4::fs_std::FileExt::unlock(&self.0);
    }
}

/// `path` with `suffix` added to its file name.
fn sibling(path: &Path, suffix: &str) -> PathBuf {
    let mut name = path.file_name().unwrap_or_default().to_os_string();
    name.push(suffix);
    path.with_file_name(name)
}

/// Replaces the file at `path` by `text` in one step: a reader sees the old file or the new
/// one, never a part.
fn write_atomically(path: &Path, text: &str) -> Result<(), EditError> {
    let meta =
        std::fs::metadata(path).map_err(|e| EditError::Io(format!("{}: {e}", path.display())))?;
    if meta.permissions().readonly() {
        return Err(EditError::Conflict(format!(
            "{} is read-only (a mounted ConfigMap?); change it where it comes from",
            path.display()
        )));
    }
    let temp = sibling(path, &format!(".{}.tmp", std::process::id()));
    let io = |e: std::io::Error| EditError::Io(format!("{}: {e}", temp.display()));
    let written = (|| {
        let mut file = std::fs::File::create(&temp).map_err(io)?;
        file.write_all(text.as_bytes()).map_err(io)?;
        file.set_permissions(meta.permissions()).map_err(io)?;
        file.sync_all().map_err(io)?;
        std::fs::rename(&temp, path).map_err(|e| match e.kind() {
            std::io::ErrorKind::PermissionDenied | std::io::ErrorKind::ReadOnlyFilesystem => {
                EditError::Conflict(format!("{}: the folder is read-only: {e}", path.display()))
            }
            _ => EditError::Io(format!("{}: {e}", path.display())),
        })
    })();
    if written.is_err() {
        let _ = std::fs::remove_file(&temp);
        return written;
    }
    // The rename itself is durable once the folder is synced.
    if let Some(folder) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
        if let Ok(dir) = std::fs::File::open(folder) {
            let _ = dir.sync_all();
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests;
