//! Changes to the config's providers and their keys (`provider …`, `/admin/providers`).
//! A provider's keys are numbered in the order written: its `api_key` first, then its
//! `api_keys`.

use super::{entry, under, At, EditError, Node, Op, Plan, Step};
use router_core::config::{Config, ProviderConfig};

/// A new provider, as `provider add` and `POST /admin/providers` describe it.
#[derive(Debug, Clone, Default, serde::Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct NewProvider {
    /// Its name.
    pub name: String,
    /// Its API: openai (the default), anthropic, gemini, azure or mock.
    #[serde(rename = "type")]
    pub kind: Option<String>,
    /// Its base URL (every type but mock).
    pub base_url: Option<String>,
    /// Its keys.
    pub api_keys: Vec<String>,
    /// Models callable without a group (`provider/model`).
    pub models: Vec<String>,
    /// What the upstream allows each key per minute: requests.
    pub rpm: Option<u64>,
    /// ... and tokens.
    pub tpm: Option<u64>,
}

/// A key added to a provider.
#[derive(Debug, Clone, Default, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewKey {
    /// The key, or a `${VARIABLE}` the router reads it from.
    pub key: String,
    /// Its own requests per minute.
    #[serde(default)]
    pub rpm: Option<u64>,
    /// Its own tokens per minute.
    #[serde(default)]
    pub tpm: Option<u64>,
}

/// One change to the config's providers.
#[derive(Debug, Clone)]
pub enum ProviderEdit {
    /// Adds a provider.
    Add(NewProvider),
    /// Removes a provider no group uses.
    Remove(String),
    /// Disables (`true`) or enables a provider.
    SetDisabled(String, bool),
    /// Adds a key to a provider.
    KeyAdd(String, NewKey),
    /// Removes a provider's key, by its number.
    KeyRemove(String, usize),
    /// Disables (`true`) or enables a provider's key, by its number.
    KeySetDisabled(String, usize, bool),
}

impl ProviderEdit {
    fn provider(&self) -> &str {
        match self {
            Self::Add(p) => &p.name,
            Self::Remove(n)
            | Self::SetDisabled(n, _)
            | Self::KeyAdd(n, _)
            | Self::KeyRemove(n, _)
            | Self::KeySetDisabled(n, _, _) => n,
        }
    }
}

fn limits(rpm: Option<u64>, tpm: Option<u64>) -> Option<Node> {
    (rpm.is_some() || tpm.is_some())
        .then(|| Node::map([("rpm", rpm.map(Node::Int)), ("tpm", tpm.map(Node::Int))]))
}

/// A provider's entry, its fields in the config's documented order.
fn written(p: &NewProvider) -> Node {
    Node::map([
        ("name", Some(Node::Str(p.name.clone()))),
        ("type", p.kind.clone().map(Node::Word)),
        ("base_url", p.base_url.clone().map(Node::Str)),
        (
            "api_keys",
            (!p.api_keys.is_empty()).then(|| Node::strs(&p.api_keys)),
        ),
        ("limits", limits(p.rpm, p.tpm)),
        (
            "models",
            (!p.models.is_empty()).then(|| Node::strs(&p.models)),
        ),
    ])
}

fn written_key(k: &NewKey) -> Node {
    match (k.rpm, k.tpm) {
        (None, None) => Node::Str(k.key.clone()),
        (rpm, tpm) => Node::map([
            ("key", Some(Node::Str(k.key.clone()))),
            ("rpm", rpm.map(Node::Int)),
            ("tpm", tpm.map(Node::Int)),
        ]),
    }
}

/// Where key `n` of `p` (the `index`-th provider) is written, and whether it is disabled.
fn key_at(p: &ProviderConfig, index: usize, n: usize) -> Result<(At, bool), EditError> {
    let at = entry("providers", index);
    let count = usize::from(p.api_key.is_some()) + p.api_keys.len();
    let found = match (&p.api_key, n) {
        (Some(k), 0) => Some((under(&at, "api_key"), k.disabled)),
        (Some(_), n) => {
            (p.api_keys.get(n - 1)).map(|k| (vec_at(&at, "api_keys", n - 1), k.disabled))
        }
        (None, n) => (p.api_keys.get(n)).map(|k| (vec_at(&at, "api_keys", n), k.disabled)),
    };
    found.ok_or_else(|| {
        EditError::NotFound(format!(
            "provider '{}' has no key #{n} (it has {count}, numbered from 0)",
            p.name.as_str()
        ))
    })
}

fn vec_at(at: &At, key: &str, item: usize) -> At {
    let mut path = under(at, key);
    path.push(Step::Item(item));
    path
}

/// The ops that make `edit` on `config`.
pub(super) fn plan(config: &Config, edit: &ProviderEdit) -> Result<Plan, EditError> {
    let name = edit.provider();
    let index = (config.providers.iter()).position(|p| p.name.as_str() == name);
    let (ops, said) = match (edit, index) {
        (ProviderEdit::Add(_), Some(_)) => {
            return Err(EditError::Conflict(format!(
                "a provider named '{name}' exists already"
            )))
        }
        (ProviderEdit::Add(new), None) => (
            vec![Op::Push(vec![Step::Key("providers".into())], written(new))],
            format!("added provider '{name}'"),
        ),
        (_, None) => return Err(EditError::NotFound(format!("no provider named '{name}'"))),
        (ProviderEdit::Remove(_), Some(i)) => {
            let users: Vec<&str> = (config.groups.iter())
                .filter(|g| g.models.iter().any(|m| m.provider.as_str() == name))
                .map(|g| g.name.as_str())
                .collect();
            if !users.is_empty() {
                return Err(EditError::Conflict(format!(
                    "provider '{name}' serves the group(s) {}: remove its models from them \
                     first (group model remove), or disable it",
                    users.join(", ")
                )));
            }
            let said = format!("removed provider '{name}'");
            (vec![Op::Remove(entry("providers", i))], said)
        }
        (ProviderEdit::SetDisabled(_, disabled), Some(i)) => {
            let at = under(&entry("providers", i), "disabled");
            let op = if *disabled {
                Op::Set(at, Node::Bool(true))
            } else {
                Op::Remove(at)
            };
            let done = if *disabled { "disabled" } else { "enabled" };
            (vec![op], format!("{done} provider '{name}'"))
        }
        (ProviderEdit::KeyAdd(_, key), Some(i)) => {
            let p = &config.providers[i];
            let n = usize::from(p.api_key.is_some()) + p.api_keys.len();
            let at = under(&entry("providers", i), "api_keys");
            let op = Op::Push(at, written_key(key));
            (
                vec![op],
                format!(
                    "added key {} to provider '{name}'",
                    router_core::key_id(name, n)
                ),
            )
        }
        (ProviderEdit::KeyRemove(_, n), Some(i)) => {
            let (at, _) = key_at(&config.providers[i], i, *n)?;
            let said = format!(
                "removed key {} (the keys after it are renumbered)",
                router_core::key_id(name, *n)
            );
            (vec![Op::Remove(at)], said)
        }
        (ProviderEdit::KeySetDisabled(_, n, disabled), Some(i)) => {
            let (at, was) = key_at(&config.providers[i], i, *n)?;
            let done = if *disabled { "disabled" } else { "enabled" };
            let ops = match (was, *disabled) {
                (false, true) => vec![
                    Op::Wrap(at.clone()),
                    Op::Set(under(&at, "disabled"), Node::Bool(true)),
                ],
                (true, false) => vec![Op::Remove(under(&at, "disabled"))],
                _ => Vec::new(),
            };
            let said = if ops.is_empty() {
                format!("key {} was {done} already", router_core::key_id(name, *n))
            } else {
                format!("{done} key {}", router_core::key_id(name, *n))
            };
            (ops, said)
        }
    };
    Ok(Plan { ops, said })
}
