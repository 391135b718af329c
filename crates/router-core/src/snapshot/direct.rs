//! Models without a group: a provider's `models: [..]` makes each one a group of its own,
//! named `provider/model` (one model entry, every key of the provider: key balancing,
//! failover among the keys, accounting and limits as for any group), and also reachable as the
//! bare `model` when no group has that name and no other provider lists it. A bare name that
//! several providers list is ambiguous: asking for it is a 400 that names the choices.

use super::compile::{group, Known, Problems};
use super::Group;
use crate::config::{Config, EnvString, GroupConfig, ModelConfig};
use crate::state::State;
use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

/// What the providers' `models` add to the groups.
pub(super) struct Direct {
    /// Bare names several providers list, each with its `provider/model` choices.
    pub(super) ambiguous: HashMap<String, Vec<String>>,
}

/// Adds a group per `providers[i].models[j]` (unless a group has that name) to `groups`,
/// and the bare names that are not ambiguous to `index`.
pub(super) fn add(
    config: &Config,
    known: &Known<'_>,
    state: &State,
    groups: &mut Vec<Arc<Group>>,
    index: &mut HashMap<String, usize>,
    problems: &mut Problems<'_>,
    warnings: &mut Vec<String>,
) -> Direct {
    let mut bare: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for (pi, p) in config.providers.iter().enumerate() {
        let usable = known
            .providers
            .get(p.name.as_str())
            .is_some_and(|compiled| !compiled.keys.is_empty());
        for (mi, model) in p.models.iter().enumerate() {
            let at = format!("providers[{pi}].models[{mi}]");
            if model.as_str().is_empty() {
                problems.push(at, "model name is empty");
                continue;
            }
            // A provider with a problem, or without a usable key, was reported as such.
            let name = format!("{}/{}", p.name.as_str(), model.as_str());
            if !usable || index.contains_key(&name) {
                continue;
            }
            let config = GroupConfig {
                name: EnvString::from(name.as_str()),
                strategy: Default::default(),
                models: vec![ModelConfig {
                    weight: Default::default(),
                    provider: p.name.clone(),
                    name: model.clone(),
                    tags: Vec::new(),
                }],
                cache: None,
                queue_timeout: None,
            };
            if let Some(g) = group(&at, &config, known, state, problems, warnings) {
                index.insert(name.clone(), groups.len());
                groups.push(Arc::new(g));
                bare.entry(model.as_str().to_string())
                    .or_default()
                    .push(name);
            }
        }
    }
    let mut ambiguous = HashMap::new();
    for (model, mut choices) in bare {
        if index.contains_key(&model) {
            continue;
        }
        choices.dedup();
        match choices.as_slice() {
            [one] => {
                let i = index[one];
                index.insert(model, i);
            }
            _ => {
                ambiguous.insert(model, choices);
            }
        }
    }
    Direct { ambiguous }
}
