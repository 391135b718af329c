//! Changes to the config's named clients (`client …`, `/admin/clients`).

use super::{entry, under, EditError, Node, Op, Plan};
use router_core::config::Config;

/// A new client, as `client add` and `POST /admin/clients` describe it.
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

/// A client's entry, its fields in the config's documented order.
fn written(c: &NewClient, hash: &str) -> Node {
    let budget = (c.budget_usd.is_some() || c.budget_tokens.is_some()).then(|| {
        Node::map([
            ("usd", c.budget_usd.map(Node::Float)),
            ("tokens", c.budget_tokens.map(Node::Int)),
            (
                "period",
                Some(Node::Str(
                    c.period.clone().unwrap_or_else(|| "month".into()),
                )),
            ),
        ])
    });
    let limits = (c.rpm.is_some() || c.tpm.is_some() || c.parallel.is_some()).then(|| {
        Node::map([
            ("rpm", c.rpm.map(|n| Node::Int(n.into()))),
            ("tpm", c.tpm.map(Node::Int)),
            ("parallel", c.parallel.map(|n| Node::Int(n.into()))),
        ])
    });
    Node::map([
        ("name", Some(Node::Str(c.name.clone()))),
        ("key", Some(Node::Str(hash.to_string()))),
        ("groups", c.groups.as_deref().map(Node::strs)),
        ("budget", budget),
        ("limits", limits),
        ("expires", c.expires.clone().map(Node::Str)),
        ("team", c.team.clone().map(Node::Str)),
    ])
}

/// The ops that make `edit` on `config`.
pub(super) fn plan(config: &Config, edit: &ClientEdit) -> Result<Plan, EditError> {
    let name = match edit {
        ClientEdit::Add(c, _) => &c.name,
        ClientEdit::SetDisabled(n, _) | ClientEdit::Remove(n) | ClientEdit::Rotate(n, _) => n,
    };
    let index = config.clients.iter().position(|c| c.name == *name);
    let (ops, said) = match (edit, index) {
        (ClientEdit::Add(..), Some(_)) => {
            return Err(EditError::Conflict(format!(
                "a client named '{name}' exists already"
            )))
        }
        (ClientEdit::Add(new, hash), None) => (
            vec![Op::Push(
                vec![super::Step::Key("clients".into())],
                written(new, hash),
            )],
            format!("added client '{name}'"),
        ),
        (_, None) => return Err(EditError::NotFound(format!("no client named '{name}'"))),
        (ClientEdit::SetDisabled(_, disabled), Some(i)) => {
            let at = under(&entry("clients", i), "disabled");
            let op = if *disabled {
                Op::Set(at, Node::Bool(true))
            } else {
                Op::Remove(at)
            };
            let done = if *disabled { "disabled" } else { "enabled" };
            (vec![op], format!("{done} client '{name}'"))
        }
        (ClientEdit::Remove(_), Some(i)) => (
            vec![Op::Remove(entry("clients", i))],
            format!("removed client '{name}'"),
        ),
        (ClientEdit::Rotate(_, hash), Some(i)) => {
            let at = entry("clients", i);
            (
                vec![
                    Op::Remove(under(&at, "keys")),
                    Op::Set(under(&at, "key"), Node::Str(hash.clone())),
                ],
                format!("rotated the key of client '{name}'"),
            )
        }
    };
    Ok(Plan { ops, said })
}
