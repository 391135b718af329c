//! Changes to the config's groups and their models (`group …`, `/admin/groups`). A group's
//! model is named by its provider and upstream name.

use super::{entry, under, EditError, Node, Op, Plan, Step};
use router_core::config::Config;

/// A model of a group, as `group model add` and `POST /admin/groups/{name}/models` give it.
#[derive(Debug, Clone, Default, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewModel {
    /// The provider serving it.
    pub provider: String,
    /// The model's name upstream.
    pub name: String,
    /// Its weight (default 1).
    #[serde(default)]
    pub weight: Option<f64>,
    /// Tags requests may ask for.
    #[serde(default)]
    pub tags: Vec<String>,
}

/// A new group.
#[derive(Debug, Clone, Default, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewGroup {
    /// The name clients send as `model`.
    pub name: String,
    /// How its pairs are picked (default `usage`).
    #[serde(default)]
    pub strategy: Option<String>,
    /// Its models (one at least).
    #[serde(default)]
    pub models: Vec<NewModel>,
}

/// One change to the config's groups.
#[derive(Debug, Clone)]
pub enum GroupEdit {
    /// Adds a group.
    Add(NewGroup),
    /// Removes a group.
    Remove(String),
    /// Sets a group's strategy.
    SetStrategy(String, String),
    /// Adds a model to a group.
    ModelAdd(String, NewModel),
    /// Removes a group's model, named by provider and upstream name.
    ModelRemove(String, String, String),
    /// Sets the weight of a group's model.
    ModelWeight(String, String, String, f64),
}

/// A number as written: whole numbers without a fraction.
fn number(n: f64) -> Node {
    if n.fract() == 0.0 && (0.0..9.0e15).contains(&n) {
        Node::Int(n as u64)
    } else {
        Node::Float(n)
    }
}

/// A model's entry, its fields in the config's documented order.
fn written(m: &NewModel) -> Node {
    Node::map([
        ("weight", m.weight.map(number)),
        ("provider", Some(Node::Str(m.provider.clone()))),
        ("name", Some(Node::Str(m.name.clone()))),
        ("tags", (!m.tags.is_empty()).then(|| Node::strs(&m.tags))),
    ])
}

/// The ops that make `edit` on `config`.
pub(super) fn plan(config: &Config, edit: &GroupEdit) -> Result<Plan, EditError> {
    let name = match edit {
        GroupEdit::Add(g) => &g.name,
        GroupEdit::Remove(n)
        | GroupEdit::SetStrategy(n, _)
        | GroupEdit::ModelAdd(n, _)
        | GroupEdit::ModelRemove(n, _, _)
        | GroupEdit::ModelWeight(n, _, _, _) => n,
    };
    let index = (config.groups.iter()).position(|g| g.name.as_str() == name);
    // The model of group `i` served by `provider` as `model`.
    let model_at = |i: usize, provider: &str, model: &str| {
        let g = &config.groups[i];
        let found = (g.models.iter())
            .position(|m| m.provider.as_str() == provider && m.name.as_str() == model);
        let mut at = under(&entry("groups", i), "models");
        found
            .map(|mi| {
                at.push(Step::Item(mi));
                at
            })
            .ok_or_else(|| {
                EditError::NotFound(format!(
                    "group '{name}' has no model '{model}' of provider '{provider}'"
                ))
            })
    };
    let (ops, said) = match (edit, index) {
        (GroupEdit::Add(_), Some(_)) => {
            return Err(EditError::Conflict(format!(
                "a group named '{name}' exists already"
            )))
        }
        (GroupEdit::Add(g), None) => {
            if g.models.is_empty() {
                return Err(EditError::Invalid(format!(
                    "group '{name}' needs a model at least (provider and name)"
                )));
            }
            let group = Node::map([
                ("name", Some(Node::Str(g.name.clone()))),
                ("strategy", g.strategy.clone().map(Node::Word)),
                ("models", Some(Node::List(g.models.iter().map(written).collect()))),
            ]);
            let at = vec![Step::Key("groups".into())];
            (vec![Op::Push(at, group)], format!("added group '{name}'"))
        }
        (_, None) => return Err(EditError::NotFound(format!("no group named '{name}'"))),
        (GroupEdit::Remove(_), Some(i)) => (
            vec![Op::Remove(entry("groups", i))],
            format!("removed group '{name}'"),
        ),
        (GroupEdit::SetStrategy(_, strategy), Some(i)) => (
            vec![Op::Set(
                under(&entry("groups", i), "strategy"),
                Node::Word(strategy.clone()),
            )],
            format!("set the strategy of group '{name}' to {strategy}"),
        ),
        (GroupEdit::ModelAdd(_, m), Some(i)) => (
            vec![Op::Push(under(&entry("groups", i), "models"), written(m))],
            format!(
                "added model '{}' of provider '{}' to group '{name}'",
                m.name, m.provider
            ),
        ),
        (GroupEdit::ModelRemove(_, provider, model), Some(i)) => (
            vec![Op::Remove(model_at(i, provider, model)?)],
            format!("removed model '{model}' of provider '{provider}' from group '{name}'"),
        ),
        (GroupEdit::ModelWeight(_, provider, model, weight), Some(i)) => (
            vec![Op::Set(
                under(&model_at(i, provider, model)?, "weight"),
                number(*weight),
            )],
            format!("set the weight of model '{model}' of provider '{provider}' in group '{name}' to {weight}"),
        ),
    };
    Ok(Plan { ops, said })
}
