//! What the dashboard's charts draw: per group, over the last hour, requests, errors and
//! tokens per second and the mean latency, from samples of the router's cumulative counters
//! taken every [`STEP`] (and one more, live, when the charts are asked for).

use crate::App;
use serde_json::{json, Value};
use std::collections::{BTreeSet, VecDeque};
use std::sync::Mutex;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// How often a sample is taken.
pub(crate) const STEP: Duration = Duration::from_secs(10);

/// Samples kept: an hour's, and the one an hour ago to count from.
const KEPT: usize = 361;

/// A group's cumulative counters at a moment.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub(crate) struct Totals {
    pub(crate) requests: u64,
    pub(crate) errors: u64,
    pub(crate) tokens: u64,
    pub(crate) latency_sum: f64,
    pub(crate) latency_count: u64,
}

/// Every group's counters at `at` (Unix seconds).
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Sample {
    pub(crate) at: f64,
    pub(crate) groups: Vec<(String, Totals)>,
}

impl Sample {
    fn of(&self, group: &str) -> Totals {
        (self.groups.iter())
            .find(|(g, _)| g == group)
            .map_or_else(Totals::default, |(_, t)| *t)
    }
}

/// The samples of the last hour.
#[derive(Debug, Default)]
pub(crate) struct History(Mutex<VecDeque<Sample>>);

impl History {
    /// Keeps `sample` (in place of the last one when that is under a second older).
    pub(crate) fn record(&self, sample: Sample) {
        let mut samples = self.0.lock().unwrap_or_else(|p| p.into_inner());
        if samples.back().is_some_and(|last| sample.at - last.at < 1.0) {
            samples.pop_back();
        }
        if samples.len() == KEPT {
            samples.pop_front();
        }
        samples.push_back(sample);
    }

    /// The charts' data: the end of each interval (`at`, Unix seconds) and, per group, its
    /// rates over it and its mean latency (null where it had no request), up to `live`.
    pub(crate) fn json(&self, live: Sample) -> Value {
        let mut samples: Vec<Sample> = {
            let kept = self.0.lock().unwrap_or_else(|p| p.into_inner());
            kept.iter().cloned().collect()
        };
        if samples.last().is_none_or(|last| live.at > last.at) {
            samples.push(live);
        }
        let names: BTreeSet<&str> = (samples.iter())
            .flat_map(|s| s.groups.iter().map(|(g, _)| g.as_str()))
            .collect();
        let at: Vec<f64> = samples.iter().skip(1).map(|s| s.at.round()).collect();
        let groups: Vec<Value> = (names.into_iter())
            .map(|name| {
                let mut series: [Vec<Value>; 4] = Default::default();
                for w in samples.windows(2) {
                    let (a, b) = (w[0].of(name), w[1].of(name));
                    let dt = (w[1].at - w[0].at).max(1e-3);
                    let rate = |x: u64, y: u64| json!(y.saturating_sub(x) as f64 / dt);
                    series[0].push(rate(a.requests, b.requests));
                    series[1].push(rate(a.errors, b.errors));
                    series[2].push(rate(a.tokens, b.tokens));
                    let n = b.latency_count.saturating_sub(a.latency_count);
                    series[3].push(if n == 0 {
                        Value::Null
                    } else {
                        json!((b.latency_sum - a.latency_sum) / n as f64 * 1000.0)
                    });
                }
                let [requests, errors, tokens, latency] = series;
                json!({"name": name, "requests": requests, "errors": errors, "tokens": tokens,
                       "latency_ms": latency})
            })
            .collect();
        json!({"step_seconds": STEP.as_secs(), "at": at, "groups": groups})
    }
}

/// The router's counters now: client requests and errors per group (`-` for those that
/// named none) and latency from the request metrics' `figures`, tokens from what each group's
/// pairs were charged.
pub(crate) fn sample(app: &App, figures: &crate::metrics::Figures) -> Sample {
    let at = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64());
    let mut groups: Vec<(String, Totals)> = Vec::new();
    for (name, requests, errors) in figures.group_requests() {
        let i = slot(&name, &mut groups);
        groups[i].1.requests = requests;
        groups[i].1.errors = errors;
    }
    for (name, sum, count) in figures.latency_totals() {
        let i = slot(&name, &mut groups);
        groups[i].1.latency_sum = sum;
        groups[i].1.latency_count = count;
    }
    for group in app.router.snapshot().groups() {
        let i = slot(group.name(), &mut groups);
        groups[i].1.tokens = group.pairs().iter().map(|p| p.in_group().tokens()).sum();
    }
    Sample { at, groups }
}

/// Where `name` is in `groups`, added if it is not yet.
fn slot(name: &str, groups: &mut Vec<(String, Totals)>) -> usize {
    match groups.iter().position(|(g, _)| g == name) {
        Some(i) => i,
        None => {
            groups.push((name.to_string(), Totals::default()));
            groups.len() - 1
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(at: f64, requests: u64, errors: u64, tokens: u64, latency: (f64, u64)) -> Sample {
        let totals = Totals {
            requests,
            errors,
            tokens,
            latency_sum: latency.0,
            latency_count: latency.1,
        };
        Sample {
            at,
            groups: vec![("g".to_string(), totals)],
        }
    }

    #[test]
    fn rates_and_mean_latency_per_interval_up_to_now() {
        let history = History::default();
        history.record(at(1000.0, 0, 0, 0, (0.0, 0)));
        history.record(at(1010.0, 20, 5, 1000, (2.0, 20)));
        let data = history.json(at(1015.0, 20, 5, 1500, (2.0, 20)));
        assert_eq!(data["at"], json!([1010.0, 1015.0]));
        let g = &data["groups"][0];
        assert_eq!(g["name"], "g");
        assert_eq!(g["requests"], json!([2.0, 0.0]));
        assert_eq!(g["errors"], json!([0.5, 0.0]));
        assert_eq!(g["tokens"], json!([100.0, 100.0]));
        // 20 requests took 2 s in all: 100 ms each; none since.
        assert_eq!(g["latency_ms"], json!([100.0, null]));
    }

    #[test]
    fn an_hour_is_kept_and_a_sample_within_a_second_replaces_the_last() {
        let history = History::default();
        for i in 0..400 {
            history.record(at(f64::from(i) * 10.0, u64::from(i as u32), 0, 0, (0.0, 0)));
        }
        history.record(at(3990.5, 500, 0, 0, (0.0, 0)));
        let kept = history.0.lock().unwrap();
        assert_eq!(kept.len(), KEPT);
        assert_eq!(kept.back().unwrap().groups[0].1.requests, 500);
        assert_eq!(kept.front().unwrap().at, 390.0);
    }
}
