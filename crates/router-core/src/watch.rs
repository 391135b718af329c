//! Reloading when the config file changes: a `notify` watcher on the file's folder (so editors
//! that replace the file, and symlink swaps, are seen), debounced, reloading only when the
//! content really changed.
//!
//! The debounce is the few lines below rather than a debouncer crate, as neither does this
//! job: `notify-debouncer-full` releases each event a fixed time after that event, not after a
//! quiet period, so a write that takes longer than the delay would be read half done (a failed
//! reload, then a good one); `notify-debouncer-mini` waits for quiet but drops the events'
//! kinds, so the router's own reads of the file (inotify reports opens) would wake it again,
//! and again, for as long as it runs.

use crate::Router;
use std::future::Future;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::mpsc::UnboundedReceiver;
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
                change = next_change(&mut rx, DEBOUNCE) => if change.is_none() { return },
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

/// Waits for the next change: a file event, then `quiet` without another (a file being written
/// keeps it waiting). `None` once the watcher is gone.
async fn next_change(events: &mut UnboundedReceiver<()>, quiet: Duration) -> Option<()> {
    events.recv().await?;
    loop {
        tokio::select! {
            _ = tokio::time::sleep(quiet) => return Some(()),
            event = events.recv() => event?,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::task::Poll;

    #[tokio::test(start_paused = true)]
    async fn a_change_is_seen_once_the_file_is_quiet() {
        let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
        let quiet = Duration::from_millis(150);
        let mut change = Box::pin(next_change(&mut rx, quiet));
        let mut poll = || futures_poll(change.as_mut());
        assert_eq!(poll(), Poll::Pending);
        // A write in three parts, 100 ms apart: longer in all than the quiet period, but
        // never quiet for it.
        for _ in 0..3 {
            tx.send(()).unwrap();
            assert_eq!(poll(), Poll::Pending);
            tokio::time::advance(Duration::from_millis(100)).await;
            assert_eq!(poll(), Poll::Pending);
        }
        tokio::time::advance(Duration::from_millis(50)).await;
        assert_eq!(poll(), Poll::Ready(Some(())));
        drop(change);
        drop(tx);
        assert_eq!(next_change(&mut rx, quiet).await, None);
    }

    /// Polls a future once.
    fn futures_poll<F: Future + ?Sized>(f: std::pin::Pin<&mut F>) -> Poll<F::Output> {
        let waker = std::task::Waker::noop();
        f.poll(&mut std::task::Context::from_waker(waker))
    }
}
