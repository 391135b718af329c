//! Reloading when the config file changes: a `notify` watcher on the file itself (through its
//! symlinks, to the file they name), debounced, reloading only when the content really changed.
//! [`watch_files`] is the same watch for other files (the listener's TLS certificate).
//!
//! Only the file is watched, not its folder, so nothing else written there (a log file next to
//! the config, say) wakes the watcher. An editor that replaces the file, or a symlink swap (as
//! Kubernetes mounts do), leaves the watch on the old file: after every change the watch is set
//! again on whatever the path names now, and while the path names nothing (deleted, about to be
//! written again) it is looked for every [`REARM_POLL`].
//!
//! The debounce is the few lines below rather than a debouncer crate, as neither does this
//! job: `notify-debouncer-full` releases each event a fixed time after that event, not after a
//! quiet period, so a write that takes longer than the delay would be read half done (a failed
//! reload, then a good one); `notify-debouncer-mini` waits for quiet but drops the events'
//! kinds, so the router's own reads of the file (inotify reports opens) would wake it again,
//! and again, for as long as it runs. The quiet period has a ceiling ([`MAX_DELAY`]): a file
//! written without pause is still read within it.

use crate::Router;
use notify::{RecommendedWatcher, RecursiveMode, Watcher};
use std::future::Future;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::mpsc::UnboundedReceiver;
use tokio::task::JoinHandle;

/// Quiet time after the last file event before reloading.
const DEBOUNCE: Duration = Duration::from_millis(150);
/// Longest wait from a change to its reload, however busy the file.
const MAX_DELAY: Duration = Duration::from_secs(1);
/// How often a config path that names no file is looked for again.
const REARM_POLL: Duration = Duration::from_millis(250);

/// Watches the router's config file and reloads it on change until `shutdown` completes.
/// A file that fails to load is logged with its location; the running config keeps serving.
/// Must be called inside a tokio runtime.
pub fn watch_config(
    router: Arc<Router>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<JoinHandle<()>, notify::Error> {
    let Some(path) = router.config_path().map(Path::to_path_buf) else {
        return Err(notify::Error::generic(
            "the router has no config file to watch",
        ));
    };
    watch_files(vec![path], move || reload(&router), shutdown)
}

/// Watches `paths` (each through its symlinks, as described above) and calls `changed` once
/// a change to any of them has settled, until `shutdown` completes. What changed, if anything
/// did, is for `changed` to find out: it is called after every settled burst of events.
/// Must be called inside a tokio runtime.
pub fn watch_files(
    paths: Vec<PathBuf>,
    mut changed: impl FnMut() + Send + 'static,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<JoinHandle<()>, notify::Error> {
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<()>();
    let watcher = notify::recommended_watcher(move |event: notify::Result<notify::Event>| {
        // Opening or reading a file (our own reads included) is no change.
        if let Ok(e) = event {
            if !matches!(e.kind, notify::EventKind::Access(_)) {
                let _ = tx.send(());
            }
        }
    })?;
    let mut files = WatchedFiles { watcher, paths };
    files.arm()?;
    Ok(tokio::spawn(async move {
        tokio::pin!(shutdown);
        loop {
            tokio::select! {
                _ = &mut shutdown => return,
                change = next_change(&mut rx, DEBOUNCE, MAX_DELAY) => if change.is_none() { return },
            }
            // A path may name another file now (replaced, or a symlink swapped).
            while files.arm().is_err() {
                tokio::select! {
                    _ = &mut shutdown => return,
                    _ = tokio::time::sleep(REARM_POLL) => {}
                }
            }
            changed();
        }
    }))
}

/// The watched files and the watch on them.
struct WatchedFiles {
    watcher: RecommendedWatcher,
    paths: Vec<PathBuf>,
}

impl WatchedFiles {
    /// Watches the files the paths name now (following their symlinks).
    fn arm(&mut self) -> Result<(), notify::Error> {
        for path in &self.paths {
            // The old watch may be gone with its file; that is no error.
            let _ = self.watcher.unwatch(path);
            self.watcher.watch(path, RecursiveMode::NonRecursive)?;
        }
        Ok(())
    }
}

/// Reloads the file if its content changed, and says how that went.
fn reload(router: &Router) {
    if !router.config_file_changed() {
        return;
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

/// Waits for the next change: a file event, then `quiet` without another (a file being written
/// keeps it waiting), or `max` after the first event at the latest. `None` once the watcher is
/// gone.
async fn next_change(
    events: &mut UnboundedReceiver<()>,
    quiet: Duration,
    max: Duration,
) -> Option<()> {
    events.recv().await?;
    let ceiling = tokio::time::sleep(max);
    tokio::pin!(ceiling);
    loop {
        tokio::select! {
            _ = tokio::time::sleep(quiet) => return Some(()),
            _ = &mut ceiling => return Some(()),
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
        let max = Duration::from_secs(1);
        let mut change = Box::pin(next_change(&mut rx, quiet, max));
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
        assert_eq!(next_change(&mut rx, quiet, max).await, None);
    }

    #[tokio::test(start_paused = true)]
    async fn a_file_written_without_pause_is_read_within_the_ceiling() {
        let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
        let (quiet, max) = (Duration::from_millis(150), Duration::from_secs(1));
        let mut change = Box::pin(next_change(&mut rx, quiet, max));
        let mut poll = || futures_poll(change.as_mut());
        // A write every 50 ms, never quiet: the change is seen at the ceiling.
        for _ in 0..19 {
            tx.send(()).unwrap();
            assert_eq!(poll(), Poll::Pending);
            tokio::time::advance(Duration::from_millis(50)).await;
        }
        tx.send(()).unwrap();
        assert_eq!(poll(), Poll::Pending);
        // 950 ms after the first event, 0 after the last: waiting still.
        tokio::time::advance(Duration::from_millis(49)).await;
        assert_eq!(poll(), Poll::Pending);
        tokio::time::advance(Duration::from_millis(1)).await;
        assert_eq!(poll(), Poll::Ready(Some(())));
    }

    /// Polls a future once.
    fn futures_poll<F: Future + ?Sized>(f: std::pin::Pin<&mut F>) -> Poll<F::Output> {
        let waker = std::task::Waker::noop();
        f.poll(&mut std::task::Context::from_waker(waker))
    }
}
