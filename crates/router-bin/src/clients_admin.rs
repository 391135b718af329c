//! `POST /admin/clients`, `PATCH /admin/clients/{name}` and `DELETE /admin/clients/{name}`:
//! the config editor on a running router. The file edited is the one the router serves; its
//! watcher applies the change.

use crate::editor::{edit_clients, ClientEdit, EditError, NewClient};
use crate::routes::Action;
use crate::{body, json_response, ResBody};
use http::{Request, Response, StatusCode};
use hyper::body::Incoming;
use router_core::{RouterError, Snapshot};
use serde_json::json;
use std::sync::Arc;

/// What a `PATCH` may change.
#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct Change {
    #[serde(default)]
    disabled: Option<bool>,
    #[serde(default)]
    rotate: bool,
}

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

fn bad(message: String) -> Response<ResBody> {
    refused(&EditError::Invalid(message))
}

/// Serves one of the editing routes.
pub(crate) async fn serve(
    app: &Arc<crate::App>,
    snapshot: &Snapshot,
    action: Action,
    name: Option<String>,
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
    let mut key = None;
    let edit = match (action, name) {
        (Action::ClientAdd, _) => match serde_json::from_slice::<NewClient>(&bytes) {
            Ok(new) => {
                let k = new_key()?;
                let hashed = crate::client_cmd::hash(&k);
                key = Some(k);
                ClientEdit::Add(new, hashed)
            }
            Err(e) => return Ok(bad(format!("the body is not a client ({e}); send {{\"name\": …, \"groups\": [..], \"budget_usd\": …, \"rpm\": …}}"))),
        },
        (Action::ClientChange, Some(name)) => match serde_json::from_slice::<Change>(&bytes) {
            Ok(Change { rotate: true, disabled: None }) => {
                let k = new_key()?;
                let hashed = crate::client_cmd::hash(&k);
                key = Some(k);
                ClientEdit::Rotate(name, hashed)
            }
            Ok(Change { rotate: false, disabled: Some(d) }) => ClientEdit::SetDisabled(name, d),
            Ok(_) => return Ok(bad("send {\"disabled\": true|false} or {\"rotate\": true}".into())),
            Err(e) => return Ok(bad(format!("the body is not a change ({e}); send {{\"disabled\": true|false}} or {{\"rotate\": true}}"))),
        },
        (Action::ClientRemove, Some(name)) => ClientEdit::Remove(name),
        _ => return Err(RouterError::Internal("an editing route without its client".into())),
    };
    let added = matches!(edit, ClientEdit::Add(..));
    let done = tokio::task::spawn_blocking(move || edit_clients(&path, &edit))
        .await
        .map_err(|e| RouterError::Internal(format!("config editor: {e}")))?;
    Ok(match done {
        Ok(said) => {
            let status = if added {
                StatusCode::CREATED
            } else {
                StatusCode::OK
            };
            json_response(status, &json!({"changed": said, "key": key}))
        }
        Err(e) => refused(&e),
    })
}

fn new_key() -> Result<String, RouterError> {
    crate::cli::generate_key().map_err(RouterError::Internal)
}
