//! Reloading when the config file changes: a `notify` watcher on the file's folder (so editors
//! that replace the file, and symlink swaps, are seen), debounced, reloading only when the
//! content really changed.

use crate::Router;
use std::future::Future;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;
use tokio::task::JoinHandle;

/// Quiet time after the last file event before reloading.
const DEBOUNCE: Duration = Duration::from_millis(150);

/// Watches the router's config file and reloads it on change until `shutdown` completes.
/// A file that fails to load is logged with its location; the running config keeps serving.
/// Must be called inside a tokio runtime.
pub fn watch_config(
    router: Arc<Router>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<JoinHandle<()>, notify::Error> {
    use notify::{RecursiveMode, Watcher};
    let Some(path) = router.config_path() else {
        return Err(notify::Error::generic(
            "the router has no config file to watch",
        ));
    };
    let dir = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => Path::new(".").to_path_buf(),
    };
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<()>();
    let mut watcher = notify::recommended_watcher(move |event: notify::Result<notify::Event>| {
        // Opening or reading a file (our own reads included) is no change.
        if let Ok(e) = event {
            if !matches!(e.kind, notify::EventKind::Access(_)) {
                let _ = tx.send(());
            }
        }
    })?;
    watcher.watch(&dir, RecursiveMode::NonRecursive)?;
    Ok(tokio::spawn(async move {
        let _watcher = watcher;
        tokio::pin!(shutdown);
        loop {
            tokio::select! {
                _ = &mut shutdown => return,
                event = rx.recv() => if event.is_none() { return },
            }
            loop {
                tokio::select! {
                    _ = tokio::time::sleep(DEBOUNCE) => break,
                    event = rx.recv() => if event.is_none() { return },
                }
            }
            if !router.config_file_changed() {
                continue;
            }
            match router.reload() {
                Ok(outcome) => tracing::info!(
                    generation = outcome.generation,
                    "config file changed; reloaded"
                ),
                Err(e) => tracing::error!(
                    generation = router.snapshot().generation(),
                    "config file changed but cannot be used; still serving the previous config:\n{e}"
                ),
            }
        }
    }))
}
