//! Reloading when the config file changes: a `notify` watcher on the file's folder (so editors
//! that replace the file, and symlink swaps, are seen), debounced by `notify-debouncer-full`,
//! reloading only when the content really changed.

use crate::Router;
use notify_debouncer_full::{new_debouncer, DebounceEventResult};
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
    let mut debouncer = new_debouncer(DEBOUNCE, None, move |result: DebounceEventResult| {
        // Opening or reading a file (our own reads included) is no change.
        let changed = result.is_ok_and(|events| {
            events
                .iter()
                .any(|e| !matches!(e.kind, notify::EventKind::Access(_)))
        });
        if changed {
            let _ = tx.send(());
        }
    })?;
    debouncer.watch(&dir, notify::RecursiveMode::NonRecursive)?;
    Ok(tokio::spawn(async move {
        let _debouncer = debouncer;
        tokio::pin!(shutdown);
        loop {
            tokio::select! {
                _ = &mut shutdown => return,
                event = rx.recv() => if event.is_none() { return },
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
