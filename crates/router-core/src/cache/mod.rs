//! The response cache of groups that opt in (`cache: { ttl, backend }`): an answer is kept
//! for `ttl` and given again, charged nothing, to the same request (see [`key`]). Kept in
//! this replica's memory (a size-bound [`moka`] cache, least used out first), in Redis for
//! every replica, or both (memory first). Only whole successful answers are kept: an error,
//! a stream that broke, was cut or was left by its client never is. A client's
//! `Cache-Control: no-cache` skips the lookup, `no-store` the lookup and the keeping.

mod entry;
mod key;

pub(crate) use entry::{Entry, Head};
pub(crate) use key::Key;

use crate::dialects::{ClientRequest, Endpoint};
use crate::forward::ChatResponse;
use crate::shared::Handle;
use crate::snapshot::Group;
use arc_swap::ArcSwapOption;
use bytes::Bytes;
use http::{header, HeaderMap, HeaderValue};
use std::sync::Arc;
use std::time::Duration;
use tokio::time::Instant;

/// The header that says whether a cacheable answer came from the cache: `hit` or `miss`.
pub const CACHE_HEADER: &str = "x-llm-router-cache";

/// Largest answer kept (8 MiB); a larger one is relayed and not kept.
pub(crate) const MAX_ENTRY_BYTES: usize = 8 * 1024 * 1024;

/// How the cache of a request's group dealt with it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CacheOutcome {
    /// Answered from the cache; nothing was sent upstream or charged.
    Hit,
    /// Not in the cache: sent upstream, and kept if it may be.
    Miss,
    /// The client asked not to be answered from the cache (`Cache-Control: no-cache` or
    /// `no-store`); its header says `miss`.
    Bypass,
}

impl CacheOutcome {
    /// `hit`, `miss` or `bypass`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Hit => "hit",
            Self::Miss => "miss",
            Self::Bypass => "bypass",
        }
    }
}

type Map = moka::sync::Cache<Key, Arc<Entry>>;

/// This replica's kept answers, across reloads (rebuilt, empty, when the bound changes).
#[derive(Default)]
pub(crate) struct LocalCache {
    map: ArcSwapOption<Map>,
}

impl LocalCache {
    /// The map, bound to `max_bytes`.
    fn map(&self, max_bytes: u64) -> Map {
        if let Some(map) = self.map.load().as_deref() {
            if map.policy().max_capacity() == Some(max_bytes) {
                return map.clone();
            }
        }
        let map = Map::builder()
            .max_capacity(max_bytes)
            .weigher(|_, entry: &Arc<Entry>| entry.weight())
            .expire_after(Expires)
            .build();
        self.map.store(Some(Arc::new(map.clone())));
        map
    }

    /// Answers kept now (expired ones not swept yet included).
    pub(crate) fn entries(&self) -> u64 {
        self.map.load().as_deref().map_or(0, |map| {
            map.run_pending_tasks();
            map.entry_count()
        })
    }
}

/// Evicts an entry when it expires (its freshness is checked on the runtime's clock at each
/// read too).
struct Expires;

impl moka::Expiry<Key, Arc<Entry>> for Expires {
    fn expire_after_create(
        &self,
        _: &Key,
        entry: &Arc<Entry>,
        _: std::time::Instant,
    ) -> Option<Duration> {
        Some(entry.expires.saturating_duration_since(Instant::now()))
    }
}

/// One request's way through its group's cache.
pub(crate) struct Lookup {
    key: Key,
    ttl: Duration,
    /// May be answered from the cache (no `no-cache` or `no-store`).
    read: bool,
    /// Its answer may be kept (no `no-store`).
    write: bool,
    local: Option<Map>,
    redis: Option<Arc<Handle>>,
}

impl Lookup {
    /// The lookup of `client`'s request in the cache of `group`; `None` when it has no
    /// cache or the request is not one it keeps. `capped`: the router set the completion
    /// limit the client left out.
    pub(crate) fn new(
        local: &LocalCache,
        max_bytes: u64,
        redis: Option<Arc<Handle>>,
        group: &Group,
        client: &ClientRequest<'_>,
        capped: bool,
    ) -> Option<Self> {
        let config = group.cache()?;
        if client.endpoint == Endpoint::CountTokens {
            // Answered from the request itself or cheaply: nothing to save.
            return None;
        }
        let mut models: Vec<(&str, &str)> = Vec::new();
        for pair in group.pairs() {
            let model = (pair.provider().name(), pair.model());
            if models.last() != Some(&model) {
                models.push(model);
            }
        }
        let key = key::key(&key::Request {
            group: group.name(),
            models: &models,
            dialect: client.dialect,
            endpoint: client.endpoint.path(),
            headers: client.headers,
            capped,
            body: client.body,
        })?;
        let (read, write) = directives(client.headers);
        Some(Self {
            key,
            ttl: config.ttl,
            read,
            write,
            local: config.backend.local().then(|| local.map(max_bytes)),
            redis: redis.filter(|_| config.backend.redis()),
        })
    }

    /// The kept answer to give, if there is a fresh one (memory first, then Redis).
    pub(crate) async fn find(&self, group: &Arc<str>) -> Option<ChatResponse> {
        if !self.read {
            return None;
        }
        if let Some(local) = &self.local {
            match local.get(&self.key) {
                Some(entry) if entry.fresh() => return Some(entry.answer(group)),
                Some(_) => local.invalidate(&self.key),
                None => {}
            }
        }
        let handle = self.redis.as_ref()?;
        let entry = Arc::new(crate::shared::cache::get(handle, &self.key).await?);
        if let Some(local) = &self.local {
            local.insert(self.key, entry.clone());
        }
        Some(entry.answer(group))
    }

    /// `response`, the answer to a miss: marked so, and kept when it is whole (a stream
    /// once it ended well).
    pub(crate) fn keep(self, mut response: ChatResponse) -> ChatResponse {
        let outcome = if self.read {
            CacheOutcome::Miss
        } else {
            CacheOutcome::Bypass
        };
        response.served.cache = Some(outcome);
        (response.headers).insert(CACHE_HEADER, HeaderValue::from_static("miss"));
        if !self.write || !response.status.is_success() {
            return response;
        }
        let text = |name: &str| {
            (response.headers.get(name))
                .and_then(|v| v.to_str().ok())
                .map(str::to_string)
        };
        let keeper = Keeper {
            key: self.key,
            ttl: self.ttl,
            local: self.local,
            redis: self.redis,
            head: Head {
                stream: response.body.is_stream(),
                content_type: text(header::CONTENT_TYPE.as_str())
                    .unwrap_or_else(|| "application/json".into()),
                dropped: text(crate::fields::DROPPED_HEADER),
                model: response.served.model.to_string(),
            },
        };
        response.body.keep_with(keeper);
        response
    }
}

/// What the client's `Cache-Control` allows: (answer from the cache, keep the answer).
fn directives(headers: Option<&HeaderMap>) -> (bool, bool) {
    let (mut read, mut write) = (true, true);
    let values = headers.map(|h| h.get_all(header::CACHE_CONTROL));
    for value in values.into_iter().flatten() {
        let Ok(value) = value.to_str() else { continue };
        for directive in value.split(',') {
            let name = directive.split('=').next().unwrap_or("").trim();
            if name.eq_ignore_ascii_case("no-store") {
                (read, write) = (false, false);
            } else if name.eq_ignore_ascii_case("no-cache") {
                read = false;
            }
        }
    }
    (read, write)
}

/// Keeps an answer once its bytes are known.
pub(crate) struct Keeper {
    key: Key,
    ttl: Duration,
    local: Option<Map>,
    redis: Option<Arc<Handle>>,
    head: Head,
}

impl Keeper {
    /// Keeps `body` (in memory now; in Redis by a task of its own).
    pub(crate) fn keep(self, body: Bytes) {
        if body.len() > MAX_ENTRY_BYTES {
            return;
        }
        let entry = Arc::new(Entry {
            head: self.head,
            body,
            expires: crate::health::later(Instant::now(), self.ttl),
        });
        if let Some(local) = &self.local {
            local.insert(self.key, entry.clone());
        }
        if let (Some(handle), Ok(runtime)) = (self.redis, tokio::runtime::Handle::try_current()) {
            let (key, ttl) = (self.key, self.ttl);
            runtime
                .spawn(async move { crate::shared::cache::put(&handle, &key, &entry, ttl).await });
        }
    }
}

impl std::fmt::Debug for Keeper {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Keeper")
            .field("ttl", &self.ttl)
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::directives;
    use http::HeaderMap;

    fn of(value: &str) -> (bool, bool) {
        let mut headers = HeaderMap::new();
        headers.insert("cache-control", value.parse().unwrap());
        directives(Some(&headers))
    }

    #[test]
    fn no_cache_skips_the_lookup_and_no_store_the_keeping_too() {
        assert_eq!(directives(None), (true, true));
        assert_eq!(of("max-age=0"), (true, true));
        assert_eq!(of("No-Cache"), (false, true));
        assert_eq!(of("max-age=0, no-store"), (false, false));
        assert_eq!(of("no-cache=\"set-cookie\""), (false, true));
    }
}
