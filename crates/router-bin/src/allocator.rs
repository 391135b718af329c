//! How the server uses glibc's allocator (the default build; the `mimalloc` and `jemalloc`
//! features replace it and skip all of this). The one place with unsafe code: two calls into
//! the C library that take plain integers and touch no memory of ours.
//!
//! - glibc raises its mmap threshold each time a large block is freed, so after a burst of
//!   large request bodies their memory stays in the heap for good. Measured with
//!   `loadbench --only bodies` (three bursts of 100 concurrent 1 MiB bodies): RSS 251 MiB five
//!   seconds after the last burst by default, 26 MiB with the threshold fixed at 128 KiB (and a
//!   lower peak, 168 MiB against 257). A fixed threshold keeps every block of 128 KiB or more
//!   in its own mapping, given back to the system when it is freed.
//! - The smaller blocks a burst of requests freed stay in the heap's arenas as free pages,
//!   which glibc gives back only from the top of an arena. After `loadbench --only requests
//!   --rounds 1 --seconds 5`, the router held 15,840 kB of anonymous memory, of which
//!   `malloc_trim` gave back 8,960 kB. So every [`GIVE_BACK_EVERY`] a thread of its own gives
//!   the free pages back (6,000 to 9,000 instructions a call; `docs/benchmarks.md`).

use std::time::Duration;

/// How often the free pages of the heap are given back to the system.
pub(crate) const GIVE_BACK_EVERY: Duration = Duration::from_secs(5);

/// Fixes glibc's mmap threshold at 128 KiB (see the module's notes); at start, before
/// anything is allocated.
pub(crate) fn return_large_blocks() {
    call(Setting::MmapThreshold);
}

/// Starts the thread that gives the heap's free pages back every [`GIVE_BACK_EVERY`], for a
/// server: after a burst of load, what it left free leaves the RSS within seconds.
pub(crate) fn give_back_free_pages() {
    if !GLIBC {
        return;
    }
    let spawned = std::thread::Builder::new()
        .name("give-back".into())
        .stack_size(64 * 1024)
        .spawn(|| loop {
            std::thread::sleep(GIVE_BACK_EVERY);
            let started = std::time::Instant::now();
            call(Setting::Trim);
            tracing::trace!(target: "allocator", took = ?started.elapsed(), "free pages given back");
        });
    if let Err(e) = spawned {
        tracing::warn!("free memory is not given back after load: {e}");
    }
}

enum Setting {
    MmapThreshold,
    Trim,
}

const GLIBC: bool = cfg!(all(
    target_os = "linux",
    target_env = "gnu",
    not(any(feature = "mimalloc", feature = "jemalloc"))
));

#[cfg(all(
    target_os = "linux",
    target_env = "gnu",
    not(any(feature = "mimalloc", feature = "jemalloc"))
))]
#[allow(unsafe_code)]
fn call(setting: Setting) {
    // SAFETY: `mallopt` sets one of the allocator's parameters and `malloc_trim` gives free
    // pages back; both take plain integers, touch no memory of ours, and are thread-safe.
    unsafe {
        match setting {
            Setting::MmapThreshold => libc::mallopt(libc::M_MMAP_THRESHOLD, 128 * 1024),
            Setting::Trim => libc::malloc_trim(0),
        };
    }
}

#[cfg(not(all(
    target_os = "linux",
    target_env = "gnu",
    not(any(feature = "mimalloc", feature = "jemalloc"))
)))]
fn call(_: Setting) {}
