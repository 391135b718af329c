//! The config editor: one typed change applied to the config file the router serves, keeping
//! the operator's comments, ordering and formatting everywhere outside the edited node
//! (`yaml-edit`, a lossless YAML tree; a JSON config is spliced as text, see `editor_json`). The result is compiled as a reload would compile it
//! before anything is written, the write is atomic (a temporary file in the same folder,
//! fsynced, renamed over the file, the file's mode kept), and editors in any process take
//! turns through a lock file beside the config. The router's watcher applies the change.

use router_core::{Format, Router, Source};
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::str::FromStr;
use yaml_edit::{Mapping, Sequence, YamlFile};

/// Why an edit was refused; the file is untouched in every case.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EditError {
    /// The client named is not in the config (404).
    NotFound(String),
    /// The edit cannot be made to this file: a name already taken, a read-only file (409).
    Conflict(String),
    /// The edited config would not load: the problems, located (422).
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

/// A new named client, as `client add` and `POST /admin/clients` describe it.
#[derive(Debug, Clone, Default, serde::Deserialize, clap::Args)]
#[serde(deny_unknown_fields, default)]
pub struct NewClient {
    /// Its name.
    pub name: String,
    /// A group it may use (repeat for several; default: all).
    #[arg(long = "group")]
    pub groups: Option<Vec<String>>,
    /// Budget in US dollars per period.
    #[arg(long)]
    pub budget_usd: Option<f64>,
    /// Budget in tokens per period.
    #[arg(long)]
    pub budget_tokens: Option<u64>,
    /// The budget's period: day, week, month or total [default: month].
    #[arg(long)]
    pub period: Option<String>,
    /// Requests per minute.
    #[arg(long)]
    pub rpm: Option<u32>,
    /// Tokens per minute.
    #[arg(long)]
    pub tpm: Option<u64>,
    /// Requests in flight at once.
    #[arg(long)]
    pub parallel: Option<u32>,
    /// Its team (one of `teams:`).
    #[arg(long)]
    pub team: Option<String>,
    /// When its key stops working: a day (2027-01-01) or an RFC 3339 moment.
    #[arg(long)]
    pub expires: Option<String>,
}

/// One change to the config's clients.
#[derive(Debug, Clone)]
pub enum ClientEdit {
    /// Adds a client whose key has this `sha256:<hex>`.
    Add(NewClient, String),
    /// Disables (`true`) or enables a client.
    SetDisabled(String, bool),
    /// Removes a client.
    Remove(String),
    /// Replaces a client's keys by the one with this `sha256:<hex>`.
    Rotate(String, String),
}

/// Applies `edit` to the config file at `path` and says what changed.
pub fn edit_clients(path: &Path, edit: &ClientEdit) -> Result<String, EditError> {
    let format = Format::of_path(path);
    let _turn = Turn::take(path)?;
    let text = std::fs::read_to_string(path)
        .map_err(|e| EditError::Io(format!("{}: {e}", path.display())))?;
    let (edited, said) = match format {
        Format::Yaml => apply(&text, edit)?,
        Format::Json => {
            let index = find(&text, Format::Json, edited_name(edit))?;
            crate::editor_json::apply(&text, edit, index)?
        }
    };
    if let Err(e) = Router::from_source(&Source::from_text(&edited, format)) {
        return Err(EditError::Invalid(format!(
            "the edit would make the config unusable; {} is unchanged:\n{e}",
            path.display()
        )));
    }
    write_atomically(path, &edited)?;
    Ok(format!("{said} in {}", path.display()))
}

/// The name of the client `edit` is about.
fn edited_name(edit: &ClientEdit) -> &str {
    match edit {
        ClientEdit::Add(c, _) => &c.name,
        ClientEdit::SetDisabled(n, _) | ClientEdit::Remove(n) | ClientEdit::Rotate(n, _) => n,
    }
}

/// The index of client `name` in `text`'s `clients:`, as the config reads it.
fn find(text: &str, format: Format, name: &str) -> Result<Option<usize>, EditError> {
    let config = Source::from_text(text, format)
        .parse()
        .map_err(|e| EditError::Invalid(format!("the config does not load as it is:\n{e}")))?;
    Ok(config.clients.iter().position(|c| c.name == name))
}

/// `text` with `edit` made, and what was done.
fn apply(text: &str, edit: &ClientEdit) -> Result<(String, String), EditError> {
    let file = YamlFile::from_str(text).map_err(|e| {
        EditError::Invalid(format!("the config is not YAML this editor reads: {e}"))
    })?;
    let top = file
        .document()
        .and_then(|d| d.as_mapping())
        .ok_or_else(|| EditError::Invalid("the config is not a mapping of keys".into()))?;
    let name = edited_name(edit);
    let index = find(text, Format::Yaml, name)?;
    let clients = top.get_sequence("clients");
    let client =
        |i: usize| (clients.as_ref().and_then(|s| s.get(i))).and_then(|n| n.as_mapping().cloned());
    let said = match (edit, index) {
        (ClientEdit::Add(..), Some(_)) => {
            return Err(EditError::Conflict(format!(
                "a client named '{name}' exists already"
            )))
        }
        (ClientEdit::Add(new, hash), None) => {
            let entry = new_client(new, hash);
            match &clients {
                Some(seq) => seq.push(entry),
                None => {
                    let seq = Sequence::new();
                    seq.push(entry);
                    top.set("clients", seq);
                }
            }
            format!("added client '{name}'")
        }
        (_, None) => return Err(EditError::NotFound(format!("no client named '{name}'"))),
        (ClientEdit::SetDisabled(_, disabled), Some(i)) => {
            let m = client(i).ok_or_else(|| not_a_mapping(name))?;
            if *disabled {
                m.set("disabled", true);
            } else {
                m.remove("disabled");
            }
            format!(
                "{} client '{name}'",
                if *disabled { "disabled" } else { "enabled" }
            )
        }
        (ClientEdit::Remove(_), Some(i)) => {
            if let Some(seq) = &clients {
                seq.remove(i);
            }
            format!("removed client '{name}'")
        }
        (ClientEdit::Rotate(_, hash), Some(i)) => {
            let m = client(i).ok_or_else(|| not_a_mapping(name))?;
            m.remove("keys");
            m.set("key", hash.as_str());
            format!("rotated the key of client '{name}'")
        }
    };
    Ok((file.to_string(), said))
}

fn not_a_mapping(name: &str) -> EditError {
    EditError::Invalid(format!(
        "client '{name}' is not written as a mapping of keys"
    ))
}

/// A client's entry, its fields in the config's documented order.
fn new_client(c: &NewClient, hash: &str) -> Mapping {
    let m = Mapping::new();
    m.set("name", c.name.as_str());
    m.set("key", hash);
    if let Some(groups) = &c.groups {
        let seq = Sequence::new_flow();
        for g in groups {
            seq.push(g.as_str());
        }
        m.set("groups", seq);
    }
    if c.budget_usd.is_some() || c.budget_tokens.is_some() {
        let b = Mapping::new_flow();
        if let Some(usd) = c.budget_usd {
            b.set("usd", usd);
        }
        if let Some(tokens) = c.budget_tokens {
            b.set("tokens", tokens);
        }
        b.set("period", c.period.as_deref().unwrap_or("month"));
        m.set("budget", b);
    }
    if c.rpm.is_some() || c.tpm.is_some() || c.parallel.is_some() {
        let l = Mapping::new_flow();
        if let Some(n) = c.rpm {
            l.set("rpm", n);
        }
        if let Some(n) = c.tpm {
            l.set("tpm", n);
        }
        if let Some(n) = c.parallel {
            l.set("parallel", n);
        }
        m.set("limits", l);
    }
    if let Some(e) = &c.expires {
        m.set("expires", e.as_str());
    }
    if let Some(t) = &c.team {
        m.set("team", t.as_str());
    }
    m
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
mod tests {
    use super::*;

    const HASH: &str = "sha256:ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad";

    #[test]
    fn an_added_client_keeps_every_comment_of_the_example() {
        let example = std::fs::read_to_string(
            Path::new(env!("CARGO_MANIFEST_DIR")).join("../../config.example.yaml"),
        )
        .unwrap();
        let new = NewClient {
            name: "team-b".into(),
            groups: Some(vec!["demo".into()]),
            budget_usd: Some(50.0),
            rpm: Some(600),
            ..NewClient::default()
        };
        let (edited, said) = apply(&example, &ClientEdit::Add(new, HASH.into())).unwrap();
        assert_eq!(said, "added client 'team-b'");
        // Every line of the example is still there, in order; only the client was added.
        let mut added = edited.lines();
        for line in example.lines() {
            assert!(added.any(|l| l == line), "lost: {line}");
        }
        let config = Source::from_text(&edited, Format::Yaml).parse().unwrap();
        assert_eq!(config.clients[0].name, "team-b");
        assert_eq!(config.clients[0].key.as_ref().unwrap().as_str(), HASH);
        assert_eq!(config.clients[0].limits.rpm, Some(600));
        assert!(Router::from_source(&Source::from_text(&edited, Format::Yaml)).is_ok());
        // Then disabled, rotated and removed, the comments still there.
        let (disabled, _) =
            apply(&edited, &ClientEdit::SetDisabled("team-b".into(), true)).unwrap();
        assert!(
            Source::from_text(&disabled, Format::Yaml)
                .parse()
                .unwrap()
                .clients[0]
                .disabled
        );
        let (rotated, _) = apply(
            &disabled,
            &ClientEdit::Rotate("team-b".into(), "sha256:00".into()),
        )
        .unwrap();
        let config = Source::from_text(&rotated, Format::Yaml).parse().unwrap();
        assert_eq!(
            config.clients[0].key.as_ref().unwrap().as_str(),
            "sha256:00"
        );
        let (removed, _) = apply(&rotated, &ClientEdit::Remove("team-b".into())).unwrap();
        assert!(Source::from_text(&removed, Format::Yaml)
            .parse()
            .unwrap()
            .clients
            .is_empty());
        for line in example.lines() {
            assert!(removed.contains(line), "lost: {line}");
        }
    }

    #[test]
    fn refusals_leave_the_text_as_it_was() {
        let text = "clients:\n  - {name: a, key: k}\ngroups: []\n";
        let twice = apply(
            text,
            &ClientEdit::Add(
                NewClient {
                    name: "a".into(),
                    ..NewClient::default()
                },
                HASH.into(),
            ),
        );
        assert!(matches!(twice, Err(EditError::Conflict(m)) if m.contains("exists")));
        let missing = apply(text, &ClientEdit::Remove("b".into()));
        assert!(matches!(missing, Err(EditError::NotFound(m)) if m.contains("'b'")));
    }
}
