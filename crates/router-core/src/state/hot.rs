//! What selection reads of each pair, kept side by side in chunks: see [`Hot`].

use std::sync::atomic::{AtomicU64, Ordering::Acquire, Ordering::Relaxed};
use std::sync::Arc;

/// What selection reads of a pair: 16 bytes. The router keeps these of all its pairs side by
/// side, in chunks filled in the order the pairs are created (a group's pairs are created
/// together), so a pick over a large group reads consecutive memory rather than one
/// allocation per pair.
#[derive(Debug, Default)]
pub(crate) struct Hot {
    /// The breaker epoch and, in the lowest bit, whether the health is anything but clean (see
    /// [`crate::health::Health::is_clean`]): selection then reads it under its lock, while a clean pair is
    /// usable and picked without the lock. One word, so the two are always read together.
    pub(crate) mirror: AtomicU64,
    /// Tokens + penalties + in-flight reservations: what selection scores, kept in one word
    /// beside the separate counters.
    pub(crate) usage: AtomicU64,
}

impl Hot {
    #[inline]
    pub(crate) fn usage(&self) -> u64 {
        self.usage.load(Relaxed)
    }

    /// The breaker epoch of a pair whose health is clean, read without its lock; `None` when
    /// the health must be read under the lock.
    #[inline]
    pub(crate) fn clean_epoch(&self) -> Option<u64> {
        let mirror = self.mirror.load(Acquire);
        (mirror & 1 == 0).then_some(mirror >> 1)
    }
}

/// Adds without wrapping (an upstream may report any count).
pub(crate) fn add(counter: &AtomicU64, n: u64) {
    if n > 0 {
        let _ = counter.fetch_update(Relaxed, Relaxed, |v| Some(v.saturating_add(n)));
    }
}

/// Subtracts without wrapping (after a saturated add, less may be left than was added).
pub(crate) fn sub(counter: &AtomicU64, n: u64) {
    if n > 0 {
        let _ = counter.fetch_update(Relaxed, Relaxed, |v| Some(v.saturating_sub(n)));
    }
}

/// Pairs per chunk of [`Hot`] counters (4 KiB); a `u8` indexes it without a bounds check.
const HOT_CHUNK: usize = 256;

/// A pair's slot in a chunk of [`Hot`] counters.
#[derive(Clone)]
pub(crate) struct HotSlot {
    chunk: Arc<[Hot; HOT_CHUNK]>,
    index: u8,
}

impl HotSlot {
    #[inline]
    pub(crate) fn get(&self) -> &Hot {
        &self.chunk[usize::from(self.index)]
    }
}

fn hot_chunk() -> Arc<[Hot; HOT_CHUNK]> {
    Arc::new(std::array::from_fn(|_| Hot::default()))
}

impl std::fmt::Debug for HotSlot {
    /// The pair's own slot, not the chunk's 256.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HotSlot")
            .field("index", &self.index)
            .field("hot", self.get())
            .finish()
    }
}

impl Default for HotSlot {
    /// A chunk of its own (a [`PairStats`] made outside a router).
    fn default() -> Self {
        HotSlot {
            chunk: hot_chunk(),
            index: 0,
        }
    }
}

/// Hands out [`HotSlot`]s in order, a new chunk when one is full. Slots are never given back:
/// pairs' counters live as long as the router.
#[derive(Debug, Default)]
pub(crate) struct HotSlab {
    current: Option<Arc<[Hot; HOT_CHUNK]>>,
    used: usize,
}

impl HotSlab {
    pub(crate) fn next(&mut self) -> HotSlot {
        let chunk = match &self.current {
            Some(chunk) if self.used < HOT_CHUNK => chunk.clone(),
            _ => {
                let chunk = hot_chunk();
                self.current = Some(chunk.clone());
                self.used = 0;
                chunk
            }
        };
        let index = u8::try_from(self.used).unwrap_or(u8::MAX);
        self.used += 1;
        HotSlot { chunk, index }
    }
}
