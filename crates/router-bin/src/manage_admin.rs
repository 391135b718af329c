//! The admin API of the config editor: `/admin/clients`, `/admin/providers` and
//! `/admin/groups`, JSON in and out, OpenAI's error shape. The file edited is the one the
//! router serves; after an edit the router reloads it at once (its watcher would too), and
//! the answer gives the generation now serving.

use crate::editor::{
    edit_file, ClientEdit, Edit, EditError, GroupEdit, NewClient, NewGroup, NewKey, NewModel,
    NewProvider, ProviderEdit,
};
use crate::manage::{keys_of, shown_keys};
use crate::routes::Manage;
use crate::{body, json_response, ResBody};
use http::{Request, Response, StatusCode};
use hyper::body::Incoming;
use router_core::config::Config;
use router_core::{Format, RouterError, Snapshot, Source};
use serde::de::DeserializeOwned;
use serde_json::{json, Value};
use std::sync::Arc;

/// An error of the editor as the admin API answers it, in OpenAI's error shape.
fn refused(e: &EditError) -> Response<ResBody> {
    let (status, kind) = match e {
        EditError::NotFound(_) => (StatusCode::NOT_FOUND, "not_found_error"),
        EditError::Conflict(_) => (StatusCode::CONFLICT, "conflict_error"),
        EditError::Invalid(_) => (StatusCode::UNPROCESSABLE_ENTITY, "invalid_request_error"),
        EditError::Io(_) => (StatusCode::INTERNAL_SERVER_ERROR, "internal_error"),
    };
    json_response(
        status,
        &json!({"error": {"message": e.to_string(), "type": kind, "param": null, "code": null}}),
    )
}

/// Why a request to an editing route was not made into an edit.
enum Refusal {
    /// The editor's refusal.
    Edit(EditError),
    /// A body that is not what the route takes (400): why, and what it takes.
    Body(String, &'static str),
}

impl Refusal {
    fn answer(&self) -> Response<ResBody> {
        match self {
            Self::Edit(e) => refused(e),
            Self::Body(e, wanted) => json_response(
                StatusCode::BAD_REQUEST,
                &json!({"error": {"message": format!("the body is not what this route takes ({e}); send {wanted}"), "type": "invalid_request_error", "param": null, "code": null}}),
            ),
        }
    }
}

/// `{"disabled": bool}`.
#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct Disabled {
    disabled: bool,
}

/// A client's change: `{"disabled": bool}` or `{"rotate": true}`.
#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct ClientChange {
    #[serde(default)]
    disabled: Option<bool>,
    #[serde(default)]
    rotate: bool,
}

/// `{"strategy": "…"}`.
#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct Strategy {
    strategy: String,
}

/// `{"weight": n}`.
#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct Weight {
    weight: f64,
}

/// What one route takes, in words for its 400.
fn wanted(what: Manage) -> &'static str {
    match what {
        Manage::ClientAdd => r#"{"name": …, "groups": [..], "budget_usd": …, "rpm": …}"#,
        Manage::ClientChange => r#"{"disabled": true|false} or {"rotate": true}"#,
        Manage::ProviderAdd => {
            r#"{"name": …, "type": "openai", "base_url": …, "api_keys": [..], "models": [..], "rpm": …, "tpm": …}"#
        }
        Manage::ProviderChange | Manage::KeyChange => r#"{"disabled": true|false}"#,
        Manage::KeyAdd => r#"{"key": …, "rpm": …, "tpm": …}"#,
        Manage::GroupAdd => {
            r#"{"name": …, "strategy": …, "models": [{"provider": …, "name": …, "weight": 1}]}"#
        }
        Manage::GroupChange => r#"{"strategy": …}"#,
        Manage::ModelAdd => r#"{"provider": …, "name": …, "weight": 1, "tags": [..]}"#,
        Manage::ModelChange => r#"{"weight": n}"#,
        Manage::ClientRemove
        | Manage::ProviderRemove
        | Manage::KeyRemove
        | Manage::GroupRemove
        | Manage::ModelRemove => "no body",
    }
}

/// The edit a route asks for, from its names and body; `Err` is the answer refusing it. A
/// new client key is made here and returned with the edit.
fn edit_of(
    what: Manage,
    names: &[String],
    bytes: &[u8],
) -> Result<(Edit, Option<String>), Refusal> {
    fn read<T: DeserializeOwned>(bytes: &[u8], what: Manage) -> Result<T, Refusal> {
        serde_json::from_slice(bytes).map_err(|e| Refusal::Body(e.to_string(), wanted(what)))
    }
    let name = || names.first().cloned().unwrap_or_default();
    let model = || {
        let written = names.get(1).cloned().unwrap_or_default();
        match written.split_once('/') {
            Some((p, m)) => Ok((p.to_string(), m.to_string())),
            None => Err(Refusal::Edit(EditError::Invalid(format!(
                "'{written}' is not PROVIDER/MODEL (its slash written %2F)"
            )))),
        }
    };
    let number = || {
        let written = names.get(1).cloned().unwrap_or_default();
        written.parse::<usize>().map_err(|_| {
            Refusal::Edit(EditError::Invalid(format!(
                "'{written}' is not a key number (0, 1, … as GET /admin/providers lists them)"
            )))
        })
    };
    let new_key = || -> Result<String, Refusal> {
        crate::cli::generate_key().map_err(|e| Refusal::Edit(EditError::Io(e)))
    };
    Ok(match what {
        Manage::ClientAdd => {
            let key = new_key()?;
            let new: NewClient = read(bytes, what)?;
            let edit = ClientEdit::Add(new, crate::client_cmd::hash(&key));
            (Edit::Client(edit), Some(key))
        }
        Manage::ClientChange => match read::<ClientChange>(bytes, what)? {
            ClientChange {
                rotate: true,
                disabled: None,
            } => {
                let key = new_key()?;
                let edit = ClientEdit::Rotate(name(), crate::client_cmd::hash(&key));
                (Edit::Client(edit), Some(key))
            }
            ClientChange {
                rotate: false,
                disabled: Some(d),
            } => (Edit::Client(ClientEdit::SetDisabled(name(), d)), None),
            _ => {
                let e = EditError::Invalid(format!("send {}", wanted(what)));
                return Err(Refusal::Edit(e));
            }
        },
        Manage::ClientRemove => (Edit::Client(ClientEdit::Remove(name())), None),
        Manage::ProviderAdd => {
            let new: NewProvider = read(bytes, what)?;
            (Edit::Provider(ProviderEdit::Add(new)), None)
        }
        Manage::ProviderChange => {
            let d: Disabled = read(bytes, what)?;
            (
                Edit::Provider(ProviderEdit::SetDisabled(name(), d.disabled)),
                None,
            )
        }
        Manage::ProviderRemove => (Edit::Provider(ProviderEdit::Remove(name())), None),
        Manage::KeyAdd => {
            let key: NewKey = read(bytes, what)?;
            (Edit::Provider(ProviderEdit::KeyAdd(name(), key)), None)
        }
        Manage::KeyChange => {
            let d: Disabled = read(bytes, what)?;
            let edit = ProviderEdit::KeySetDisabled(name(), number()?, d.disabled);
            (Edit::Provider(edit), None)
        }
        Manage::KeyRemove => (
            Edit::Provider(ProviderEdit::KeyRemove(name(), number()?)),
            None,
        ),
        Manage::GroupAdd => {
            let new: NewGroup = read(bytes, what)?;
            (Edit::Group(GroupEdit::Add(new)), None)
        }
        Manage::GroupChange => {
            let s: Strategy = read(bytes, what)?;
            (
                Edit::Group(GroupEdit::SetStrategy(name(), s.strategy)),
                None,
            )
        }
        Manage::GroupRemove => (Edit::Group(GroupEdit::Remove(name())), None),
        Manage::ModelAdd => {
            let m: NewModel = read(bytes, what)?;
            (Edit::Group(GroupEdit::ModelAdd(name(), m)), None)
        }
        Manage::ModelChange => {
            let w: Weight = read(bytes, what)?;
            let (p, m) = model()?;
            (
                Edit::Group(GroupEdit::ModelWeight(name(), p, m, w.weight)),
                None,
            )
        }
        Manage::ModelRemove => {
            let (p, m) = model()?;
            (Edit::Group(GroupEdit::ModelRemove(name(), p, m)), None)
        }
    })
}

/// Serves one of the editing routes.
pub(crate) async fn serve(
    app: &Arc<crate::App>,
    snapshot: &Snapshot,
    what: Manage,
    names: Vec<String>,
    request: Request<Incoming>,
) -> Result<Response<ResBody>, RouterError> {
    let Some(path) = app.router.config_path().map(std::path::Path::to_path_buf) else {
        return Ok(refused(&EditError::Conflict(
            "this router serves no config file (the built-in example): there is nothing to edit"
                .into(),
        )));
    };
    let (parts, incoming) = request.into_parts();
    let declared = (parts.headers.get(http::header::CONTENT_LENGTH))
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    let bytes =
        body::read_limited(incoming, declared, body::BodyLimits::of(snapshot.server())).await?;
    let (edit, key) = match edit_of(what, &names, &bytes) {
        Ok(e) => e,
        Err(refusal) => return Ok(refusal.answer()),
    };
    let done = tokio::task::spawn_blocking(move || edit_file(&path, &edit))
        .await
        .map_err(|e| RouterError::Internal(format!("config editor: {e}")))?;
    let said = match done {
        Ok(said) => said,
        Err(e) => return Ok(refused(&e)),
    };
    // Applied now, so the answer can say which generation serves it.
    let generation = match app.router.reload() {
        Ok(outcome) => outcome.generation,
        Err(e) => {
            return Err(RouterError::ConfigInvalid {
                generation: app.router.snapshot().generation(),
                problems: e.to_string(),
            })
        }
    };
    let added = matches!(
        what,
        Manage::ClientAdd
            | Manage::ProviderAdd
            | Manage::KeyAdd
            | Manage::GroupAdd
            | Manage::ModelAdd
    );
    let status = if added {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    Ok(json_response(
        status,
        &json!({"changed": said, "generation": generation, "key": key}),
    ))
}

/// The config as written in the file the router serves (the built-in example without one).
fn written(app: &crate::App) -> Result<Config, RouterError> {
    let source = match app.router.config_path() {
        Some(path) => Source::read(path),
        None => Ok(Source::from_text(crate::EMBEDDED_CONFIG, Format::Yaml)),
    };
    source
        .and_then(|s| s.parse())
        .map_err(|e| RouterError::Internal(format!("the config file does not load: {e}")))
}

/// `GET /admin/providers`: each provider as written, its keys masked and numbered.
pub(crate) fn providers(app: &crate::App) -> Result<Value, RouterError> {
    let config = written(app)?;
    let list: Vec<Value> = (config.providers.iter())
        .map(|p| {
            let keys: Vec<Value> = (keys_of(p).iter().enumerate().zip(shown_keys(p)))
                .map(|((n, k), shown)| {
                    json!({"number": n, "key": router_core::key_id(p.name.as_str(), n), "key_masked": shown,
                           "rpm": k.rpm, "tpm": k.tpm, "disabled": k.disabled})
                })
                .collect();
            json!({
                "name": p.name.as_str(), "type": p.kind().to_string(),
                "base_url": p.base_url.as_ref().map(|u| u.as_str()),
                "disabled": p.disabled, "keys": keys,
                "limits": {"rpm": p.limits.rpm, "tpm": p.limits.tpm},
                "models": p.models.iter().map(|m| m.as_str()).collect::<Vec<_>>(),
            })
        })
        .collect();
    Ok(json!({"providers": list}))
}

/// `GET /admin/groups`: each group as written.
pub(crate) fn groups(app: &crate::App) -> Result<Value, RouterError> {
    let config = written(app)?;
    let list: Vec<Value> = (config.groups.iter())
        .map(|g| {
            let models: Vec<Value> = (g.models.iter())
                .map(|m| json!({"provider": m.provider.as_str(), "name": m.name.as_str(), "weight": m.weight.0, "tags": m.tags}))
                .collect();
            json!({"name": g.name.as_str(), "strategy": g.strategy.name(), "models": models})
        })
        .collect();
    Ok(json!({"groups": list}))
}
