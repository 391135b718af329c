//! What a request asks for: its group (or one pinned model of it, `group$N`) and its tags.

use crate::dialects::{ChatRequest, ClientRequest};
use crate::snapshot::{Group, Snapshot};
use crate::RouterError;
use std::sync::Arc;

/// The tags the request asks for: its `x-llm-router-tags` header's and its body's
/// `metadata.tags`, each once.
pub(super) fn asked_tags(client: &ClientRequest<'_>, request: &ChatRequest<'_>) -> Vec<String> {
    let mut tags = crate::dialects::tags::from_headers(client.headers);
    for tag in request.tags() {
        if !tags.contains(tag) {
            tags.push(tag.clone());
        }
    }
    tags
}

/// Resolves `group` or pinned `group$N` (1-based) to the group and the 0-based model index.
pub(super) fn resolve<'s>(
    snapshot: &'s Snapshot,
    model: &str,
) -> Result<(&'s Arc<Group>, Option<usize>), RouterError> {
    if let Some(group) = snapshot.group(model) {
        return Ok((group, None));
    }
    let Some((name, n)) = model.rsplit_once('$') else {
        if let Some(choices) = snapshot.ambiguous(model) {
            return Err(RouterError::bad_request(
                format!(
                    "'{}' is a model of several providers: ask for one of {}",
                    crate::error::clip(model),
                    choices.join(", ")
                ),
                Some("model"),
            ));
        }
        return Err(RouterError::unknown_group(model));
    };
    let group = snapshot
        .group(name)
        .ok_or_else(|| RouterError::unknown_group(model))?;
    let count = group.model_count();
    // A plain number: no sign, no leading zero, so one model has one name.
    let plain = !n.starts_with('0') && n.bytes().all(|b| b.is_ascii_digit());
    let index = n
        .parse::<usize>()
        .ok()
        .filter(|i| plain && (1..=count).contains(i));
    let Some(index) = index else {
        return Err(RouterError::bad_request(
            format!(
                "'{}': the part after '$' pins one model of group '{name}' and must be a \
                 number from 1 to {count}",
                crate::error::clip(model)
            ),
            Some("model"),
        ));
    };
    if !group.pairs().iter().any(|p| p.model_index() == index - 1) {
        return Err(RouterError::bad_request(
            format!(
                "'{name}${index}': model {index} of group '{name}' is not available (its \
                 provider has no usable key)"
            ),
            Some("model"),
        ));
    }
    Ok((group, Some(index - 1)))
}
