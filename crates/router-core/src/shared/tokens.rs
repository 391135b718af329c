//! Rotated OAuth refresh tokens, under `{prefix}oauth:{credential}`, so every replica and
//! every restart goes on from the last rotation.

use super::Handle;
use crate::Secret;

fn name(handle: &Handle, credential: &str) -> String {
    format!("{}oauth:{credential}", handle.prefix)
}

/// The refresh token kept for `credential`.
pub(crate) async fn get(handle: &Handle, credential: &str) -> Result<Option<Secret>, String> {
    let mut connection = handle.connection.clone();
    let mut command = redis::cmd("GET");
    command.arg(name(handle, credential));
    let call = command.query_async::<Option<String>>(&mut connection);
    match tokio::time::timeout(handle.timeout, call).await {
        Ok(Ok(token)) => Ok(token.map(Secret::new)),
        Ok(Err(e)) => Err(e.to_string()),
        Err(_) => Err("no answer in time".to_string()),
    }
}

/// Keeps `token` for `credential`.
pub(crate) async fn set(handle: &Handle, credential: &str, token: &Secret) -> Result<(), String> {
    let mut connection = handle.connection.clone();
    let mut command = redis::cmd("SET");
    command.arg(name(handle, credential)).arg(token.expose());
    let call = command.query_async::<()>(&mut connection);
    match tokio::time::timeout(handle.timeout, call).await {
        Ok(Ok(())) => Ok(()),
        Ok(Err(e)) => Err(e.to_string()),
        Err(_) => Err("no answer in time".to_string()),
    }
}
