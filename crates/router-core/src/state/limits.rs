//! Upstream key limits: what each provider key was sent over the last 60 seconds, so a key at
//! its `rpm` or `tpm` is not picked and the provider never has to answer 429. Kept outside the
//! swapped config by (provider, key fingerprint): a reload neither forgets nor doubles what was
//! sent, and every pair using the key, in any group or model, counts against the one window.
//!
//! The window slides: at any moment, the requests sent in the last 60 seconds number at most
//! `rpm` and their tokens at most `tpm` (a request counts its estimate until it is settled to its
//! real usage). A full key is free again when enough of its oldest requests are a minute old.

use std::collections::{HashMap, VecDeque};
use std::num::NonZeroU64;
use std::sync::atomic::{AtomicU64, Ordering::Acquire, Ordering::Relaxed, Ordering::Release};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;
use tokio::time::Instant;

/// How far back a key's requests count.
pub(crate) const WINDOW: Duration = Duration::from_secs(60);

/// A key's limits as compiled, and the window they are counted in.
#[derive(Debug, Clone)]
pub(crate) struct KeyLimit {
    pub(crate) rpm: Option<NonZeroU64>,
    pub(crate) tpm: Option<NonZeroU64>,
    pub(crate) window: Arc<KeyWindow>,
}

/// Whether a key can take a request now.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) enum Room {
    /// It can: the share (0 to 1) of its tighter limit still unused.
    Free(f64),
    /// It is at a limit until then.
    Full(Instant),
}

impl KeyLimit {
    /// Whether a request of `tokens` fits now: read without the window's lock while nothing in
    /// it is a minute old and the key has room (the common case); a full key is read under the
    /// lock, for when it is free.
    pub(crate) fn room(&self, now: Instant, tokens: u64) -> Room {
        match self.window.glance(self, now, tokens) {
            Some(share) => Room::Free(share),
            None => self.window.lock(now).room(self, tokens),
        }
    }

    /// Counts a request of `tokens` sent now, if it fits: its place in the window, to settle.
    pub(crate) fn take(&self, now: Instant, tokens: u64) -> Result<Sent, Instant> {
        let mut log = self.window.lock(now);
        if let Room::Full(until) = log.room(self, tokens) {
            return Err(until);
        }
        let id = log.next_id;
        log.next_id += 1;
        let tokens = self.need(tokens);
        log.tokens = log.tokens.saturating_add(tokens);
        log.sent.push_back(Entry {
            at: now,
            id,
            tokens,
        });
        Ok(Sent {
            window: self.window.clone(),
            id,
        })
    }

    /// What a request of `tokens` counts: never more than the whole `tpm`, so a request larger
    /// than a minute's tokens is sent once the window is empty rather than never.
    fn need(&self, tokens: u64) -> u64 {
        self.tpm.map_or(tokens, |tpm| tokens.min(tpm.get()))
    }

    /// The share left of the tighter limit with `requests` and `tokens` in the window, if a
    /// request of `tokens_asked` fits.
    fn share(&self, requests: u64, tokens: u64, tokens_asked: u64) -> Option<f64> {
        let mut share: f64 = 1.0;
        if let Some(rpm) = self.rpm.map(NonZeroU64::get) {
            if requests >= rpm {
                return None;
            }
            share = share.min((rpm - requests) as f64 / rpm as f64);
        }
        if let Some(tpm) = self.tpm.map(NonZeroU64::get) {
            if tokens.saturating_add(self.need(tokens_asked)) > tpm {
                return None;
            }
            share = share.min((tpm - tokens) as f64 / tpm as f64);
        }
        Some(share)
    }
}

/// One key's window: its log, and what the log holds mirrored in atomics, so a pick that only
/// looks reads no lock.
#[derive(Debug)]
pub(crate) struct KeyWindow {
    log: Mutex<Log>,
    /// Requests in the log.
    requests: AtomicU64,
    /// Their tokens.
    tokens: AtomicU64,
    /// When the oldest was sent, in nanoseconds after `base` (`u64::MAX`: none).
    oldest: AtomicU64,
    base: Instant,
}

impl Default for KeyWindow {
    fn default() -> Self {
        KeyWindow {
            log: Mutex::default(),
            requests: AtomicU64::new(0),
            tokens: AtomicU64::new(0),
            oldest: AtomicU64::new(u64::MAX),
            base: Instant::now(),
        }
    }
}

impl KeyWindow {
    /// The log, with what is a minute old taken out; its mirror is written when the guard goes.
    fn lock(&self, now: Instant) -> LogGuard<'_> {
        let mut log = self.log.lock().unwrap_or_else(|p| p.into_inner());
        log.prune(now);
        LogGuard { log, window: self }
    }

    /// The share left for a request of `tokens` by the mirror; `None` when the log must be
    /// read (something in it is a minute old, or the key is full).
    fn glance(&self, limit: &KeyLimit, now: Instant, tokens: u64) -> Option<f64> {
        let oldest = self.oldest.load(Acquire);
        if oldest != u64::MAX && self.nanos(now) >= oldest.saturating_add(WINDOW_NANOS) {
            return None;
        }
        let requests = self.requests.load(Relaxed);
        limit.share(requests, self.tokens.load(Relaxed), tokens)
    }

    fn nanos(&self, at: Instant) -> u64 {
        u64::try_from(at.saturating_duration_since(self.base).as_nanos()).unwrap_or(u64::MAX)
    }
}

const WINDOW_NANOS: u64 = 60_000_000_000;

/// A window's log, locked; dropping it writes the mirror, while the lock is still held.
struct LogGuard<'a> {
    log: MutexGuard<'a, Log>,
    window: &'a KeyWindow,
}

impl std::ops::Deref for LogGuard<'_> {
    type Target = Log;
    fn deref(&self) -> &Log {
        &self.log
    }
}

impl std::ops::DerefMut for LogGuard<'_> {
    fn deref_mut(&mut self) -> &mut Log {
        &mut self.log
    }
}

impl Drop for LogGuard<'_> {
    fn drop(&mut self) {
        let w = self.window;
        w.requests.store(self.log.sent.len() as u64, Relaxed);
        w.tokens.store(self.log.tokens, Relaxed);
        let oldest = self.log.sent.front().map_or(u64::MAX, |e| w.nanos(e.at));
        w.oldest.store(oldest, Release);
    }
}

/// The requests of the last minute, oldest first (so ids increase too), and their tokens.
#[derive(Debug, Default)]
struct Log {
    sent: VecDeque<Entry>,
    tokens: u64,
    next_id: u64,
}

#[derive(Debug)]
struct Entry {
    at: Instant,
    id: u64,
    tokens: u64,
}

impl Log {
    fn prune(&mut self, now: Instant) {
        while let Some(first) = self.sent.front() {
            if now.saturating_duration_since(first.at) < WINDOW {
                break;
            }
            self.tokens = self.tokens.saturating_sub(first.tokens);
            self.sent.pop_front();
        }
    }

    fn room(&self, limit: &KeyLimit, tokens: u64) -> Room {
        if let Some(share) = limit.share(self.sent.len() as u64, self.tokens, tokens) {
            return Room::Free(share);
        }
        // Full: free once enough of the oldest requests are a minute old.
        let mut until: Option<Instant> = None;
        if let Some(rpm) = limit.rpm.map(NonZeroU64::get) {
            let sent = self.sent.len() as u64;
            if sent >= rpm {
                // All but rpm - 1 of them must go.
                until = Some(self.sent[(sent - rpm) as usize].at + WINDOW);
            }
        }
        if let Some(tpm) = limit.tpm.map(NonZeroU64::get) {
            let over = (self.tokens)
                .saturating_add(limit.need(tokens))
                .saturating_sub(tpm);
            if over > 0 {
                let mut freed = 0u64;
                let leaving = self.sent.iter().find(|e| {
                    freed = freed.saturating_add(e.tokens);
                    freed >= over
                });
                let at = leaving.map_or(Instant::now(), |e| e.at + WINDOW);
                until = Some(until.map_or(at, |u| u.max(at)));
            }
        }
        Room::Full(until.unwrap_or_else(Instant::now))
    }

    fn position(&self, id: u64) -> Option<usize> {
        self.sent.binary_search_by_key(&id, |e| e.id).ok()
    }
}

/// A request counted in a key's window, until it is settled.
#[derive(Debug)]
pub(crate) struct Sent {
    window: Arc<KeyWindow>,
    id: u64,
}

impl Sent {
    /// The request used `tokens` in the end (nothing once it is a minute old).
    pub(crate) fn settle(self, tokens: u64) {
        let mut log = self.window.lock(Instant::now());
        if let Some(i) = log.position(self.id) {
            let old = std::mem::replace(&mut log.sent[i].tokens, tokens);
            log.tokens = log.tokens.saturating_sub(old).saturating_add(tokens);
        }
    }

    /// Nothing was sent after all: it does not count.
    pub(crate) fn forget(self) {
        let mut log = self.window.lock(Instant::now());
        if let Some(i) = log.position(self.id) {
            if let Some(e) = log.sent.remove(i) {
                log.tokens = log.tokens.saturating_sub(e.tokens);
            }
        }
    }
}

/// Every key's window, by provider and key fingerprint.
#[derive(Debug, Default)]
pub(crate) struct KeyWindows {
    by_key: Mutex<HashMap<(String, String), Arc<KeyWindow>>>,
}

impl KeyWindows {
    /// The window of `provider`'s key `fingerprint`, created on first use. Called when a
    /// config is compiled.
    pub(crate) fn of(&self, provider: &str, fingerprint: &str) -> Arc<KeyWindow> {
        let mut map = self.by_key.lock().unwrap_or_else(|p| p.into_inner());
        map.entry((provider.to_string(), fingerprint.to_string()))
            .or_default()
            .clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limit(rpm: Option<u64>, tpm: Option<u64>) -> KeyLimit {
        KeyLimit {
            rpm: rpm.and_then(NonZeroU64::new),
            tpm: tpm.and_then(NonZeroU64::new),
            window: Arc::default(),
        }
    }

    #[tokio::test(start_paused = true)]
    async fn rpm_admits_that_many_in_any_minute_all_at_once_if_they_come_at_once() {
        let l = limit(Some(3), None);
        let t0 = Instant::now();
        let sent: Vec<Sent> = (0..3).map(|_| l.take(t0, 1).unwrap()).collect();
        assert_eq!(l.take(t0, 1).unwrap_err(), t0 + WINDOW);
        // Settling does not give a request back; only time does.
        sent.into_iter().for_each(|s| s.settle(0));
        tokio::time::advance(Duration::from_secs(59)).await;
        assert!(l.take(Instant::now(), 1).is_err());
        tokio::time::advance(Duration::from_secs(1)).await;
        assert!(l.take(Instant::now(), 1).is_ok());
        // Three again in the last minute: the next is free when the second of t0+60 s leaves.
        let now = Instant::now();
        l.take(now, 1).unwrap();
        l.take(now, 1).unwrap();
        assert_eq!(l.take(now, 1).unwrap_err(), now + WINDOW);
    }

    #[tokio::test(start_paused = true)]
    async fn tpm_reserves_the_estimate_and_settles_to_the_use() {
        let l = limit(None, Some(1_000));
        let t0 = Instant::now();
        let first = l.take(t0, 600).unwrap();
        assert_eq!(l.room(t0, 0), Room::Free(0.4));
        // 600 + 600 > 1000: full until the first is a minute old.
        assert_eq!(l.take(t0, 600).unwrap_err(), t0 + WINDOW);
        // It used 100: room for 600 more.
        first.settle(100);
        tokio::time::advance(Duration::from_secs(10)).await;
        let second = l.take(Instant::now(), 600).unwrap();
        // 700 held; 400 more would need the first (100) gone.
        assert_eq!(l.take(Instant::now(), 400).unwrap_err(), t0 + WINDOW);
        // Nothing sent after all: it is not counted.
        second.forget();
        assert_eq!(l.room(Instant::now(), 900), Room::Free(0.9));
        // A request larger than the whole minute waits for an empty window, then goes.
        assert!(l.take(Instant::now(), 5_000).is_err());
        tokio::time::advance(Duration::from_secs(50)).await;
        assert!(l.take(Instant::now(), 5_000).is_ok());
    }

    #[tokio::test(start_paused = true)]
    async fn the_tighter_limit_decides_the_share_and_the_reset() {
        let l = limit(Some(4), Some(100));
        let t0 = Instant::now();
        l.take(t0, 10).unwrap();
        // A quarter of the requests used, a tenth of the tokens: 3/4 left.
        assert_eq!(l.room(t0, 0), Room::Free(0.75));
        tokio::time::advance(Duration::from_secs(5)).await;
        let t5 = Instant::now();
        l.take(t5, 80).unwrap();
        // 90 tokens held: 20 more wait for the first (10) to leave, 30 for the second too.
        assert_eq!(l.room(t5, 20), Room::Full(t0 + WINDOW));
        assert_eq!(l.room(t5, 30), Room::Full(t5 + WINDOW));
        assert_eq!(l.room(t5, 10), Room::Free(0.1));
    }
}
