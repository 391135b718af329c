//! The recent errors the dashboard lists, grouped: one entry per (status, path, message) with
//! how many times it happened, so a flood of one error (a client with a wrong key) does not
//! push out the rest.

use std::sync::Mutex;

/// How many distinct errors are kept; the one seen longest ago goes first.
const KEPT: usize = 50;

/// One error, as the dashboard lists it: the last time it happened and how often.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct RecentError {
    /// When it last happened (Unix seconds).
    pub at: u64,
    /// When it first happened (Unix seconds), since it was last out of the list.
    pub first_at: u64,
    /// How many times it happened since then.
    pub count: u64,
    /// The request id of its last occurrence.
    pub request_id: String,
    /// Status sent.
    pub status: u16,
    /// Path asked.
    pub path: String,
    /// What the client was told.
    pub message: String,
}

/// The grouped recent errors.
#[derive(Debug, Default)]
pub(crate) struct RecentErrors(Mutex<Vec<RecentError>>);

impl RecentErrors {
    /// Notes an error at `at` (Unix seconds).
    pub(crate) fn record(
        &self,
        at: u64,
        request_id: &str,
        status: u16,
        path: &str,
        message: String,
    ) {
        let mut list = self.0.lock().unwrap_or_else(|p| p.into_inner());
        let same = |e: &RecentError| e.status == status && e.path == path && e.message == message;
        if let Some(e) = list.iter_mut().find(|e| same(e)) {
            e.at = at;
            e.count += 1;
            e.request_id = request_id.to_string();
            return;
        }
        if list.len() == KEPT {
            if let Some(oldest) = (0..list.len()).min_by_key(|&i| list[i].at) {
                list.swap_remove(oldest);
            }
        }
        list.push(RecentError {
            at,
            first_at: at,
            count: 1,
            request_id: request_id.to_string(),
            status,
            path: path.to_string(),
            message,
        });
    }

    /// The errors, the latest first.
    pub(crate) fn list(&self) -> Vec<RecentError> {
        let mut list = self.0.lock().unwrap_or_else(|p| p.into_inner()).clone();
        list.sort_by(|a, b| b.at.cmp(&a.at).then(b.count.cmp(&a.count)));
        list
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_flood_of_one_error_is_one_entry_and_pushes_out_nothing() {
        let recent = RecentErrors::default();
        recent.record(
            10,
            "a",
            502,
            "/v1/chat/completions",
            "every upstream failed".into(),
        );
        for i in 0..1000 {
            recent.record(
                20 + i,
                &format!("r{i}"),
                401,
                "/v1/chat/completions",
                "bad key".into(),
            );
        }
        let list = recent.list();
        assert_eq!(list.len(), 2);
        assert_eq!(
            (list[0].status, list[0].count, list[0].first_at, list[0].at),
            (401, 1000, 20, 1019)
        );
        assert_eq!(list[0].request_id, "r999");
        assert_eq!((list[1].status, list[1].count), (502, 1));
    }

    #[test]
    fn past_the_bound_the_error_seen_longest_ago_goes() {
        let recent = RecentErrors::default();
        for i in 0..KEPT as u64 {
            recent.record(
                100 + i,
                "r",
                404,
                "/v1/chat/completions",
                format!("model m{i}"),
            );
        }
        // The first one happens again: it is now among the latest.
        recent.record(500, "r", 404, "/v1/chat/completions", "model m0".into());
        recent.record(501, "r", 404, "/v1/chat/completions", "model new".into());
        let list = recent.list();
        assert_eq!(list.len(), KEPT);
        let messages: Vec<&str> = list.iter().map(|e| e.message.as_str()).collect();
        assert_eq!(&messages[..2], ["model new", "model m0"]);
        assert!(!messages.contains(&"model m1"), "{messages:?}");
    }
}
