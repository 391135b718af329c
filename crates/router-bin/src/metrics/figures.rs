//! What the dashboard reads of the request metrics: requests and errors per group, and the
//! latency percentiles per group, estimated from the histograms' buckets. They are collected
//! once per dashboard answer (not through the registry, whose process collector reads /proc).

use super::Metrics;
use prometheus::core::Collector;
use prometheus::proto::MetricFamily;

/// The request metrics as they are now: requests, latency and time to first token.
pub struct Figures(Vec<MetricFamily>);

impl Metrics {
    /// The request metrics now, for the dashboard's figures.
    pub fn figures(&self) -> Figures {
        let mut families = self.requests.collect();
        families.extend(self.latency.collect());
        families.extend(self.ttft.collect());
        Figures(families)
    }
}

impl Figures {
    /// Client requests and those answered with an error (any status but 2xx) per group (`-`
    /// for those that named none: refused keys, unknown models and paths), from the requests
    /// counter (for the dashboard's rates).
    pub fn group_requests(&self) -> Vec<(String, u64, u64)> {
        let mut out: Vec<(String, u64, u64)> = Vec::new();
        for m in self.requests_metrics() {
            let label = |name: &str| {
                m.get_label()
                    .iter()
                    .find(|l| l.name() == name)
                    .map(|l| l.value().to_string())
                    .unwrap_or_default()
            };
            let group = label("group");
            let n = m.get_counter().get_value() as u64;
            let error = label("status_class") != "2xx";
            let slot = match out.iter().position(|(g, _, _)| *g == group) {
                Some(i) => i,
                None => {
                    out.push((group, 0, 0));
                    out.len() - 1
                }
            };
            out[slot].1 += n;
            if error {
                out[slot].2 += n;
            }
        }
        out
    }

    fn requests_metrics(&self) -> impl Iterator<Item = &prometheus::proto::Metric> {
        (self.0.iter())
            .filter(|f| f.name() == "llm_router_requests_total")
            .flat_map(|f| f.get_metric())
    }

    /// Each group's latency so far: the sum of its requests' seconds and their count (for the
    /// dashboard's history).
    pub fn latency_totals(&self) -> Vec<(String, f64, u64)> {
        let mut out: Vec<(String, f64, u64)> = Vec::new();
        for family in &self.0 {
            if family.name() != "llm_router_request_duration_seconds" {
                continue;
            }
            for m in family.get_metric() {
                let group = (m.get_label().iter())
                    .find(|l| l.name() == "group")
                    .map_or("", |l| l.value());
                let h = m.get_histogram();
                match out.iter_mut().find(|(g, _, _)| g == group) {
                    Some((_, sum, count)) => {
                        *sum += h.get_sample_sum();
                        *count += h.get_sample_count();
                    }
                    None => out.push((group.to_string(), h.get_sample_sum(), h.get_sample_count())),
                }
            }
        }
        out
    }

    /// The request histograms' quantile `q` per group (latency, then time to first token),
    /// over every provider and model that answered it, estimated from the buckets as
    /// Prometheus' `histogram_quantile` does (for the dashboard).
    pub fn quantiles(&self, q: f64) -> Vec<(String, f64, f64)> {
        let mut out: Vec<(String, f64, f64)> = Vec::new();
        for family in &self.0 {
            let latency = match family.name() {
                "llm_router_request_duration_seconds" => true,
                "llm_router_time_to_first_token_seconds" => false,
                _ => continue,
            };
            for (group, total, buckets) in per_group(family.get_metric()) {
                let value = quantile(q, total, &buckets);
                if value.is_nan() {
                    continue;
                }
                let slot = match out.iter().position(|(g, _, _)| *g == group) {
                    Some(i) => i,
                    None => {
                        out.push((group, f64::NAN, f64::NAN));
                        out.len() - 1
                    }
                };
                if latency {
                    out[slot].1 = value;
                } else {
                    out[slot].2 = value;
                }
            }
        }
        out
    }
}

/// A histogram's series summed per group: its sample count, and its buckets' upper bounds
/// with their cumulative counts.
type Summed = (String, f64, Vec<(f64, f64)>);

fn per_group(series: &[prometheus::proto::Metric]) -> Vec<Summed> {
    let mut out: Vec<Summed> = Vec::new();
    for m in series {
        let group = (m.get_label().iter())
            .find(|l| l.name() == "group")
            .map(|l| l.value().to_string())
            .unwrap_or_default();
        let h = m.get_histogram();
        let total = h.get_sample_count() as f64;
        let buckets: Vec<(f64, f64)> = (h.get_bucket().iter())
            .map(|b| (b.upper_bound(), b.cumulative_count() as f64))
            .collect();
        match out.iter_mut().find(|(g, _, _)| *g == group) {
            // Every series has the same bounds: counts add up bound by bound.
            Some((_, sum_total, sum)) => {
                *sum_total += total;
                for (s, (_, c)) in sum.iter_mut().zip(&buckets) {
                    s.1 += c;
                }
            }
            None => out.push((group, total, buckets)),
        }
    }
    out
}

/// Quantile `q` of `total` samples in cumulative `buckets` (upper bound, count; `+Inf` left
/// out), interpolated within its bucket; the highest bound for a rank past it; NaN when there
/// is nothing to rank.
fn quantile(q: f64, total: f64, buckets: &[(f64, f64)]) -> f64 {
    if total == 0.0 {
        return f64::NAN;
    }
    let rank = q * total;
    let mut previous = (0.0, 0.0);
    for &(bound, count) in buckets {
        if count >= rank {
            let (lo, below) = previous;
            let share = if count > below {
                (rank - below) / (count - below)
            } else {
                1.0
            };
            return lo + (bound - lo) * share;
        }
        previous = (bound, count);
    }
    previous.0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantiles_interpolate_within_a_bucket_over_every_series() {
        // 10 samples: 4 up to 1 s, 6 more up to 2 s.
        let buckets = [(1.0, 4.0), (2.0, 10.0)];
        assert_eq!(quantile(0.5, 10.0, &buckets), 1.0 + 1.0 / 6.0);
        assert_eq!(quantile(0.4, 10.0, &buckets), 1.0);
        // Samples past the highest bound rank at it.
        assert_eq!(quantile(0.99, 20.0, &buckets), 2.0);
        assert!(quantile(0.5, 0.0, &buckets).is_nan());
    }

    #[test]
    fn a_groups_series_of_two_providers_add_up() {
        let metrics = Metrics::new().unwrap();
        for (provider, seconds) in [("a", 0.0002), ("b", 0.2), ("b", 0.2)] {
            (metrics.latency.with_label_values(&["g", provider, "m"])).observe(seconds);
        }
        metrics
            .latency
            .with_label_values(&["h", "a", "m"])
            .observe(0.0002);
        let p50 = metrics.figures().quantiles(0.5);
        let of = |group: &str| p50.iter().find(|(g, _, _)| g == group).unwrap().1;
        // Two of g's three samples are in (0.1, 0.25]: its median is there, not at a's.
        assert!((0.1..=0.25).contains(&of("g")), "{p50:?}");
        assert!(of("h") <= 0.00025, "{p50:?}");
    }
}
