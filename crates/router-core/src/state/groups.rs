//! Selection state of each group that outlives reloads, keyed by group name like the usage
//! counters: the lock that makes simultaneous picks see each other, and the round-robin
//! cursors, so a reload in the middle of a rotation continues it.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};

/// One group's selection state.
#[derive(Debug, Default)]
pub(crate) struct GroupState {
    select: Mutex<Cursors>,
}

impl GroupState {
    /// Takes the group's select lock: picks are made one at a time, each seeing the last one's
    /// reservation.
    pub(crate) fn lock(&self) -> MutexGuard<'_, Cursors> {
        self.select.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// Round robin: the pair last served, per scope (0: the whole group; m + 1: pinned model m).
#[derive(Debug, Default)]
pub(crate) struct Cursors {
    last_served: Vec<usize>,
}

impl Cursors {
    /// The pair `scope` served last (`usize::MAX`: none yet).
    pub(crate) fn last_served(&mut self, scope: usize) -> &mut usize {
        if self.last_served.len() <= scope {
            self.last_served.resize(scope + 1, usize::MAX);
        }
        &mut self.last_served[scope]
    }
}

/// Every group's state, by name.
#[derive(Debug, Default)]
pub(crate) struct GroupStates {
    by_name: Mutex<HashMap<String, Arc<GroupState>>>,
}

impl GroupStates {
    /// The state of group `name`, created on first use. Called when a config is compiled.
    pub(crate) fn of(&self, name: &str) -> Arc<GroupState> {
        let mut map = self.by_name.lock().unwrap_or_else(|p| p.into_inner());
        map.entry(name.to_string()).or_default().clone()
    }
}
