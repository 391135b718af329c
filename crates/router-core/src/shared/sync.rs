//! One replica's side of the shared state: every `sync_interval`, one script call sends what
//! this replica counted since it started (each pair's score: tokens and penalties, absolute,
//! so a call that timed out but ran does no harm when sent again) and the cooldowns it
//! started, and reads back every pair's total and every cooldown running. What the other
//! replicas counted is added to the selection score of each pair (the [`Hot`] counter); what
//! they cooled down is cooled down here too.
//!
//! [`Hot`]: crate::usage

use super::{Handle, Link, SharedState};
use crate::health::Cooldown;
use crate::snapshot::SharedSettings;
use crate::usage::PairStats;
use crate::Router;
use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use std::collections::HashMap;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;
use tokio::time::Instant;

/// The script of one exchange; see its comments.
const SCRIPT: &str = include_str!("sync.lua");

/// A cooldown is told again only when it lasts this much longer than the one last told or
/// heard (the clocks' conversion is not exact to the millisecond).
const RETELL_MS: u64 = 500;

/// What this replica knows of one pair.
struct PairSync {
    stats: Arc<PairStats>,
    /// This replica's score Redis holds, as last acknowledged (`None`: to be sent).
    sent: Option<u64>,
    /// The other replicas' score, added to this one's selection score.
    others: u64,
    /// Unix ms of the last rate-limit cooldown and rest told or heard.
    told: [u64; 2],
}

impl PairSync {
    /// What this replica counted on the pair since it started.
    fn own_score(&self) -> u64 {
        (self.stats.score()).saturating_sub(self.stats.restored_score())
    }
}

/// The field of a cooldown kind in the cooldown hash: `{pair}|rate` or `{pair}|rest`.
fn cooldown_field(pair: &str, kind: Cooldown) -> String {
    match kind {
        Cooldown::RateLimited => format!("{pair}|rate"),
        Cooldown::Resting => format!("{pair}|rest"),
    }
}

/// What the script answered: the epoch, whether this call started it, each pair's total (in
/// the order asked), the cooldowns running (field, unix ms, ...), and the runs alive.
type Answer = (String, i64, Vec<Option<u64>>, Vec<String>, i64);

/// One call: the scores it sent, the pairs whose totals it read, and the answer.
struct Call {
    scores: Vec<(String, u64)>,
    order: Vec<String>,
    answer: Answer,
}

/// The task.
pub(super) struct Syncer {
    router: Arc<Router>,
    settings: SharedSettings,
    client: redis::Client,
    connection: Option<ConnectionManager>,
    script: redis::Script,
    /// The epoch of the data Redis holds, as last seen.
    epoch: Option<String>,
    /// This run's id: a new one each start.
    run: String,
    /// Who holds this run's reservations in budgets and minutes: the run, and a new holder
    /// after each outage (what the old one held is dropped once it stops being alive).
    holder: String,
    outages: u32,
    /// This replica's hash of its own scores: a new one each run.
    own: String,
    pairs: HashMap<String, PairSync>,
}

impl Syncer {
    pub(super) fn new(router: Arc<Router>, settings: SharedSettings) -> redis::RedisResult<Self> {
        let client = settings.client()?;
        let run = format!("{:016x}", fastrand::u64(..));
        let own = format!("{}usage:{run}", settings.prefix);
        Ok(Self {
            holder: run.clone(),
            outages: 0,
            run,
            router,
            settings,
            client,
            connection: None,
            script: redis::Script::new(SCRIPT),
            epoch: None,
            own,
            pairs: HashMap::new(),
        })
    }

    fn link(&self) -> &Link {
        self.router.shared_link()
    }

    /// How long this run counts as alive after an exchange (its reservations with it): ten
    /// exchanges, and at least ten seconds.
    fn alive_for(&self) -> u64 {
        let ten = self.settings.sync_interval.saturating_mul(10);
        u64::try_from(ten.max(Duration::from_secs(10)).as_millis()).unwrap_or(u64::MAX)
    }

    pub(super) async fn run(mut self, stop: impl Future<Output = ()>) {
        tokio::pin!(stop);
        let mut every = tokio::time::interval(self.settings.sync_interval);
        every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = every.tick() => self.exchange().await,
                () = &mut stop => break,
            }
        }
        // What was counted since the last exchange goes too.
        self.exchange().await;
    }

    /// One exchange with Redis; a failure leaves the replica on its own state until the next.
    async fn exchange(&mut self) {
        self.refresh_pairs();
        let outcome = match self.connect().await {
            Ok(connection) => {
                let call = self.call(connection);
                match tokio::time::timeout(self.settings.timeout, call).await {
                    Ok(answer) => answer,
                    Err(_) => Err(redis::RedisError::from(std::io::Error::new(
                        std::io::ErrorKind::TimedOut,
                        format!("no answer within {:?}", self.settings.timeout),
                    ))),
                }
            }
            Err(e) => Err(e),
        };
        match outcome {
            Ok(call) => {
                self.apply(call);
                if let Some(connection) = &self.connection {
                    self.link().set_handle(Some(Handle {
                        connection: connection.clone(),
                        prefix: self.settings.prefix.clone(),
                        timeout: self.settings.timeout,
                        run: self.holder.clone(),
                        settlements: self.link().settlements.clone(),
                    }));
                    // What requests used and gave back since the last exchange. Not cut
                    // short from here: a flush that fails (the connection's own response
                    // timeout included) keeps what it could not send for the next exchange.
                    let mut connection = connection.clone();
                    let settle =
                        (self.link().settlements).flush(&mut connection, &self.settings.prefix);
                    if let Err(e) = settle.await {
                        tracing::debug!(
                            "shared state: settlements wait for the next exchange: {e}"
                        );
                    }
                }
                if self.link().set(SharedState::Shared) == SharedState::Degraded {
                    tracing::warn!("shared state: Redis answers again; state is shared");
                }
            }
            Err(e) => {
                // A new connection next time: an old one may wait on a server long gone.
                // Requests stop asking Redis until it answers again.
                self.connection = None;
                self.link().set_handle(None);
                let before = self.link().set(SharedState::Degraded);
                if before == SharedState::Shared {
                    // What this holder reserved may stay in Redis: a new one from now on.
                    self.outages += 1;
                    self.holder = format!("{}.{}", self.run, self.outages);
                }
                if before != SharedState::Degraded {
                    tracing::warn!(
                        "shared state: Redis cannot be reached ({e}); this replica goes on with its own state and sends what it counts when Redis is back"
                    );
                }
            }
        }
    }

    async fn connect(&mut self) -> redis::RedisResult<ConnectionManager> {
        if let Some(c) = &self.connection {
            return Ok(c.clone());
        }
        let config = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(self.settings.timeout))
            .set_response_timeout(Some(self.settings.timeout))
            .set_number_of_retries(1);
        let connect = self.client.get_connection_manager_with_config(config);
        let connection = tokio::time::timeout(self.settings.timeout, connect)
            .await
            .map_err(|_| {
                redis::RedisError::from(std::io::Error::new(
                    std::io::ErrorKind::TimedOut,
                    "connecting timed out",
                ))
            })??;
        self.connection = Some(connection.clone());
        Ok(connection)
    }

    /// Pairs the router has now (a reload may add some).
    fn refresh_pairs(&mut self) {
        for (id, stats) in self.router.pair_stats() {
            self.pairs.entry(id).or_insert_with(|| PairSync {
                sent: None,
                stats,
                others: 0,
                told: [0; 2],
            });
        }
    }

    /// Runs the script.
    async fn call(&self, mut connection: ConnectionManager) -> redis::RedisResult<Call> {
        let prefix = &self.settings.prefix;
        let now = Instant::now();
        let wall = super::unix_ms();
        let mut scores = Vec::new();
        let mut cooldowns = Vec::new();
        for (id, pair) in &self.pairs {
            let score = pair.own_score();
            if pair.sent != Some(score) {
                scores.push((id.clone(), score));
            }
            for (kind, until) in pair.stats.cooldowns(now) {
                let ms = wall.saturating_add(
                    u64::try_from(until.saturating_duration_since(now).as_millis())
                        .unwrap_or(u64::MAX),
                );
                if ms > pair.told[kind as usize].saturating_add(RETELL_MS) {
                    cooldowns.push((cooldown_field(id, kind), ms));
                }
            }
        }
        let mut invocation = self.script.prepare_invoke();
        invocation
            .key(format!("{prefix}epoch"))
            .key(format!("{prefix}usage"))
            .key(&self.own)
            .key(format!("{prefix}cooldowns"))
            .key(format!("{prefix}runs"))
            .arg(self.epoch.as_deref().unwrap_or(""))
            // A new epoch each time Redis has none, never one seen before.
            .arg(format!("{:032x}", fastrand::u128(..)))
            .arg(wall)
            .arg(&self.holder)
            .arg(wall.saturating_add(self.alive_for()))
            .arg(scores.len());
        for (id, score) in &scores {
            invocation.arg(id).arg(score);
        }
        invocation.arg(cooldowns.len());
        for (field, ms) in &cooldowns {
            invocation.arg(field).arg(ms);
        }
        let order: Vec<String> = self.pairs.keys().cloned().collect();
        for id in &order {
            invocation.arg(id);
        }
        let answer: Answer = invocation.invoke_async(&mut connection).await?;
        Ok(Call {
            scores,
            order,
            answer,
        })
    }

    /// Takes in what Redis answered.
    fn apply(&mut self, call: Call) {
        let (epoch, started, totals, cooldowns, runs) = call.answer;
        self.link().set_replicas(u32::try_from(runs).unwrap_or(1));
        for (id, score) in call.scores {
            if let Some(pair) = self.pairs.get_mut(&id) {
                pair.sent = Some(score);
            }
        }
        if started == 1 || self.epoch.as_deref() != Some(epoch.as_str()) {
            // A Redis that started a new epoch lost what it held (or never held any): every
            // replica sends all its scores again, from the next exchange.
            if started == 1 || self.epoch.is_some() {
                for pair in self.pairs.values_mut() {
                    pair.sent = None;
                }
            }
            self.epoch = Some(epoch);
        }
        for (id, total) in call.order.iter().zip(totals) {
            if let Some(pair) = self.pairs.get_mut(id) {
                // What this replica counted before a restart is in its own counters already
                // (restored from the ledger), and in the total from its earlier run.
                let own = (pair.sent.unwrap_or(0)).saturating_add(pair.stats.restored_score());
                let others = total.unwrap_or(0).saturating_sub(own);
                pair.stats.share_usage(pair.others, others);
                pair.others = others;
            }
        }
        self.hear_cooldowns(&cooldowns);
    }

    /// Cools down here what another replica cooled down.
    fn hear_cooldowns(&mut self, cooldowns: &[String]) {
        let now = Instant::now();
        let wall = super::unix_ms();
        let generation = self.router.snapshot().generation();
        for entry in cooldowns.chunks_exact(2) {
            let Ok(ms) = entry[1].parse::<u64>() else {
                continue;
            };
            let Some((id, kind)) = entry[0].rsplit_once('|') else {
                continue;
            };
            let kind = match kind {
                "rate" => Cooldown::RateLimited,
                "rest" => Cooldown::Resting,
                _ => continue,
            };
            let Some(pair) = self.pairs.get_mut(id) else {
                continue;
            };
            let told = &mut pair.told[kind as usize];
            *told = (*told).max(ms);
            let until = now + Duration::from_millis(ms.saturating_sub(wall));
            pair.stats.cool_down(kind, until, generation);
        }
    }
}
