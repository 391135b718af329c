//! Forwarding a client request: pick a pair of its group, send, fail over, and relay the
//! answer. This room holds the failover loop; [`attempt`] is one try, [`failure`] what a
//! failed try means, [`relay`] and [`stream`] the answer on its way to the client.

mod attempt;
mod endings;
mod failure;
mod relay;
mod resolve;
mod stream;

pub use relay::{BoxError, ChatBody, ChatResponse, Served};

use crate::dialects::{ChatRequest, ClientRequest, Endpoint};
use crate::error::FailedAttempt;
use crate::exchange::Exchange;
use crate::health::Failure;
use crate::select::{Selection, Unavailable};
use crate::snapshot::{Group, Provider, Snapshot};
use crate::RouterError;
use failure::{backoff, AttemptError};
use std::sync::Arc;
use std::time::Duration;
use tokio::time::Instant;

/// Forwards `client` on `snapshot`, failing over by the failure table: a pair that failed is
/// not tried again by this request, and after a 404 or an unreachable host no key of that
/// model on that provider is; attempts are bounded by count and by the request deadline.
pub(crate) async fn forward(
    snapshot: &Snapshot,
    client: ClientRequest<'_>,
    request_id: u64,
    state: &crate::state::State,
) -> Result<ChatResponse, RouterError> {
    let mut request = ChatRequest::parse_for(client.body, client.dialect, client.endpoint)?;
    let (group, pinned) = resolve::resolve(snapshot, request.model())?;
    let link = &state.shared;
    let tab = match client.client {
        Some(named) => Some(Arc::new(
            admit(snapshot, link, named, group, &request, request_id).await?,
        )),
        None => None,
    };
    let rate_headers = tab.as_deref().map_or(&[][..], |t| t.rate_headers());
    let capped = tab
        .as_deref()
        .is_some_and(crate::tenants::Tab::caps_completion);
    if capped {
        request.cap_completion();
    }
    // After admission: a client reads only the cache of a group it may use.
    let cache = group.cache().and_then(|_| {
        let (redis, max_bytes) = (link.handle(), snapshot.cache_max_bytes());
        crate::cache::Lookup::new(&state.cache, max_bytes, redis, group, &client, capped)
    });
    if let Some(cache) = &cache {
        if let Some(hit) = cache.find(group.shared_name()).await {
            return Ok(hit.with_headers(rate_headers));
        }
    }
    let resilience = snapshot.resilience();
    let estimate = request.estimate_tokens();
    // Only `lowest_cost` prices the request: the others need no walk of its prompt.
    let expected = if group.strategy() == crate::select::Strategy::LowestCost {
        let prompt = request.prompt_estimate();
        let completion = request.max_tokens().unwrap_or(prompt);
        crate::select::Expected { prompt, completion }
    } else {
        crate::select::Expected {
            prompt: estimate,
            completion: estimate,
        }
    };
    let ids = RequestIds {
        number: request_id,
        label: client.request_id,
        trace: client.trace,
        traceparent: None,
    };
    let mut tries = Tries::new(group, &request, resilience.request_timeout, estimate);
    tries.only_tagged(group, pinned, &resolve::asked_tags(&client, &request))?;
    if tries.unsupported && request.endpoint() == Endpoint::CountTokens {
        return crate::tokens::answer(&request, group.shared_name());
    }
    while tries.failures.len() < resilience.max_attempts {
        let mut selection =
            match group.pick_for(snapshot, &tries.excluded, pinned, estimate, expected) {
                Ok(s) => s,
                Err(Unavailable::RateLimited { retry_after }) => {
                    if tries.queue(retry_after).await {
                        continue;
                    }
                    break;
                }
                Err(Unavailable::NoPair) => break,
            };
        if let Some(tab) = &tab {
            selection.bill_to(tab.clone());
        }
        if !tries.back_off(&selection, resilience.retry_backoff).await {
            break;
        }
        let Some(exchange) = Exchange::new(
            &request,
            client.headers,
            selection.provider(),
            snapshot.redactor(),
        ) else {
            // Excluded up front; never picked.
            tries.exclude_provider(group, selection.provider());
            continue;
        };
        let (body, dropped) = match exchange.body(selection.provider(), selection.model()) {
            Ok(b) => b,
            Err(e) => {
                // The request cannot be said to this provider (a field it has no place for):
                // not the pair's fault. Another provider of the group may take it as it is;
                // the refusal is the answer only if none can.
                tries.refused(group, selection, e);
                continue;
            }
        };
        let index = selection.pair_index();
        let provider = selection.provider().clone();
        let served = tries.served(group, &selection);
        let started = Instant::now();
        match attempt::attempt(&exchange, selection, body, tries.deadline, &ids, served).await {
            Ok(response) => {
                let response = response.with_dropped(&dropped).with_headers(rate_headers);
                return Ok(match cache {
                    Some(cache) => cache.keep(response),
                    None => response,
                });
            }
            Err((served, e)) => {
                // A failed attempt is time spent on the upstream.
                tries.waited += started.elapsed();
                tries.failed(group, index, &provider, served, e, &ids);
            }
        }
    }
    Err(tries.give_up(snapshot, group, pinned, request.endpoint()))
}

/// Admits a named client's request (and charges it to the client) before anything else;
/// while Redis answers, its budgets and limits are counted over every replica too.
async fn admit(
    snapshot: &Snapshot,
    link: &crate::shared::Link,
    named: &Arc<crate::tenants::Client>,
    group: &Group,
    request: &ChatRequest<'_>,
    request_id: u64,
) -> Result<crate::tenants::Tab, RouterError> {
    let shared = link.handle();
    let mode = match (&shared, snapshot.shared()) {
        (Some(_), _) => crate::tenants::Mode::Shared,
        (None, Some(_)) => crate::tenants::Mode::Outage {
            replicas: link.replicas(),
        },
        (None, None) => crate::tenants::Mode::Local,
    };
    let prices = snapshot.prices();
    let mut tab = crate::tenants::admit(named, group, request, prices, mode)?;
    match shared {
        Some(handle) => {
            // Requests per minute last: a request let through cannot be taken back.
            crate::shared::budgets::reserve(&handle, &mut tab, request_id).await?;
            crate::shared::limits::check_rpm(&handle, &mut tab).await?;
        }
        None if snapshot.shared().is_some() => {
            // Redis is away: what the request uses is counted there once it is back.
            let asks = tab.shared_asks();
            if !asks.is_empty() {
                tab.hold_shared(link.settlements.clone(), &asks, None);
            }
        }
        None => {}
    }
    Ok(tab)
}

/// What one request has tried so far.
/// How a request is known: the router's number (a local kind's answer ids), and the caller's
/// id for log lines.
pub(super) struct RequestIds<'a> {
    pub(super) number: u64,
    pub(super) label: Option<&'a str>,
    /// The trace the request belongs to, if it is traced.
    pub(super) trace: Option<&'a crate::Trace>,
    /// The `traceparent` of the attempt under way, when the request is traced.
    pub(super) traceparent: Option<String>,
}

impl RequestIds<'_> {
    /// The caller's id, or `-` when it gave none.
    pub(super) fn label(&self) -> &str {
        self.label.unwrap_or("-")
    }
}

struct Tries {
    deadline: Instant,
    /// How long it may wait for a pair at its limit or cooling down (`queue_timeout`).
    queue_until: Option<Instant>,
    /// The tokens it reserves (what a key's `tpm` must have room for).
    estimate: u64,
    /// Pairs not to pick again (or ever: their provider does not offer the endpoint).
    excluded: Vec<usize>,
    failures: Vec<FailedAttempt>,
    /// No pair offers the endpoint asked.
    unsupported: bool,
    last_timeout: bool,
    all_rate_limited: bool,
    last_failed_provider: Option<Arc<str>>,
    same_provider_retries: u32,
    /// Time spent on upstreams and backing off from them.
    waited: Duration,
    /// The first provider's refusal of the request itself.
    refusal: Option<RouterError>,
    /// The model name asked, where it is not the group's ([`Served::requested`]).
    requested: Option<String>,
}

impl Tries {
    fn new(group: &Group, request: &ChatRequest<'_>, timeout: Duration, estimate: u64) -> Self {
        // Pairs whose provider does not offer this endpoint are no candidates at all.
        let excluded: Vec<usize> = (group.pairs().iter().enumerate())
            .filter(|(_, p)| !p.provider().offers(request.endpoint()))
            .map(|(i, _)| i)
            .collect();
        let now = Instant::now();
        Self {
            deadline: crate::health::later(now, timeout),
            queue_until: group.queue_timeout().map(|t| crate::health::later(now, t)),
            estimate,
            unsupported: excluded.len() == group.pairs().len(),
            excluded,
            failures: Vec::new(),
            last_timeout: false,
            all_rate_limited: true,
            last_failed_provider: None,
            same_provider_retries: 0,
            waited: Duration::ZERO,
            refusal: None,
            requested: (request.model() != group.name()).then(|| request.model().to_string()),
        }
    }

    /// Backs off before trying the provider that just failed again; `false` when the deadline
    /// leaves no time for another attempt.
    async fn back_off(&mut self, selection: &Selection, base: Duration) -> bool {
        if self.last_failed_provider.as_deref() == Some(selection.provider().name()) {
            self.same_provider_retries += 1;
            let wait = backoff(base, self.same_provider_retries);
            if crate::health::later(Instant::now(), wait) >= self.deadline {
                self.last_timeout = true;
                return false;
            }
            tokio::time::sleep(wait).await;
            // Backing off from a failing upstream is not the router's own time either.
            self.waited += wait;
        }
        if self
            .deadline
            .saturating_duration_since(Instant::now())
            .is_zero()
        {
            self.last_timeout = true;
            return false;
        }
        true
    }

    /// Every pair is at its key's limit or cooling down, the first for `retry_after`: waits for
    /// it and says `true` when the group's `queue_timeout` (and the request's deadline) leave
    /// time for that; `false` at once otherwise.
    async fn queue(&mut self, retry_after: Duration) -> bool {
        let Some(queue_until) = self.queue_until else {
            return false;
        };
        let now = Instant::now();
        // Never a wait of nothing, which would ask again at once.
        let wait = retry_after.max(Duration::from_millis(1));
        let free_at = crate::health::later(now, wait);
        if free_at > queue_until || free_at >= self.deadline {
            return false;
        }
        tokio::time::sleep_until(free_at).await;
        // Waiting for an upstream's capacity is not the router's own time.
        self.waited += wait;
        true
    }

    /// What is about to answer, as the access log and the client's error name it.
    fn served(&self, group: &Group, selection: &Selection) -> Served {
        let (model, key_id) = selection.shared_names();
        Served {
            group: group.shared_name().clone(),
            requested: self.requested.clone(),
            provider: selection.provider().shared_name().clone(),
            model: model.clone(),
            key_id: key_id.clone(),
            attempts: self.failures.len() + 1,
            upstream_wait: self.waited,
            cache: None,
        }
    }

    /// Leaves out the pairs whose model does not carry every one of `tags`; a 400 when that
    /// leaves none (of model `pinned`, when given).
    fn only_tagged(
        &mut self,
        group: &Group,
        pinned: Option<usize>,
        tags: &[String],
    ) -> Result<(), RouterError> {
        if tags.is_empty() {
            return Ok(());
        }
        let untagged = group.untagged(tags);
        let eligible = (group.pairs().iter().enumerate())
            .any(|(i, p)| !untagged.contains(&i) && pinned.is_none_or(|m| m == p.model_index()));
        if !eligible {
            let scope = match pinned {
                Some(m) => format!("model {} of group '{}'", m + 1, group.name()),
                None => format!("no model of group '{}'", group.name()),
            };
            let verb = if pinned.is_some() {
                "does not carry"
            } else {
                "carries"
            };
            return Err(RouterError::bad_request(
                format!("{scope} {verb} all the tags asked for: {}", tags.join(", ")),
                None,
            ));
        }
        self.excluded.extend(untagged);
        Ok(())
    }

    fn exclude_provider(&mut self, group: &Group, provider: &Arc<Provider>) {
        for (i, p) in group.pairs().iter().enumerate() {
            if Arc::ptr_eq(&p.provider, provider) {
                self.excluded.push(i);
            }
        }
    }

    /// The provider of `selection` cannot be told the request: none of its pairs is tried.
    fn refused(&mut self, group: &Group, selection: Selection, error: RouterError) {
        let provider = selection.provider().clone();
        selection.withdraw();
        self.exclude_provider(group, &provider);
        self.refusal.get_or_insert(error);
    }

    /// Pair `index` failed with `e`.
    fn failed(
        &mut self,
        group: &Group,
        index: usize,
        provider: &Arc<Provider>,
        served: Served,
        e: AttemptError,
        ids: &RequestIds<'_>,
    ) {
        tracing::warn!(
            request_id = %ids.label(), provider = %served.provider, model = %served.model,
            key = %served.key_id, outcome = %e.outcome, "upstream attempt failed"
        );
        self.excluded.push(index);
        if e.failure == Failure::ModelUnavailable {
            for (i, p) in group.pairs().iter().enumerate() {
                if Arc::ptr_eq(&p.provider, provider) && p.model() == &*served.model {
                    self.excluded.push(i);
                }
            }
        }
        if !matches!(e.failure, Failure::RateLimited { .. }) {
            self.all_rate_limited = false;
        }
        self.last_timeout = e.timeout;
        self.last_failed_provider = Some(served.provider.clone());
        self.failures.push(FailedAttempt {
            provider: served.provider.to_string(),
            model: served.model.to_string(),
            key_id: served.key_id.to_string(),
            outcome: e.outcome,
        });
    }

    /// The error when no attempt answered.
    fn give_up(
        self,
        snapshot: &Snapshot,
        group: &Group,
        pinned: Option<usize>,
        endpoint: crate::dialects::Endpoint,
    ) -> RouterError {
        let group_name = group.name().to_string();
        if let (Some(refusal), true) = (self.refusal, self.failures.is_empty()) {
            return refusal;
        }
        if self.unsupported && self.failures.is_empty() {
            return RouterError::bad_request(
                format!(
                    "no provider of '{group_name}' offers /v1/{}",
                    endpoint.path()
                ),
                Some("model"),
            );
        }
        // 429 only when every pair in scope is really cooling down after 429s (not merely
        // because the attempts ran out while untried pairs were healthy).
        let cooling = if self.all_rate_limited || self.failures.is_empty() {
            group.rate_limited_for(snapshot, pinned, self.estimate)
        } else {
            None
        };
        match cooling {
            Some(retry_after) => RouterError::RateLimited {
                group: group_name,
                retry_after,
                attempts: self.failures,
            },
            None => RouterError::UpstreamFailed {
                group: group_name,
                attempts: self.failures,
                timeout: self.last_timeout,
            },
        }
    }
}
