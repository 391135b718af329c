//! The requests part: saturation and a fixed rate, for each target and body size, in rounds.

use crate::{load::*, proxies::*, system::*, Args};
use std::fmt::Write as _;
use std::time::Duration;

/// What one round measured of one target.
#[derive(Default)]
struct Sample {
    rps: f64,
    p50: Duration,
    p99: Duration,
    errors: u64,
    /// The proxy's CPU per request at saturation, in µs (none for the mock itself).
    cpu: Option<f64>,
    fixed_p50: Duration,
    fixed_p99: Duration,
    fixed_cpu: Option<f64>,
    /// Page faults and context switches per request at the fixed rate.
    faults: Option<f64>,
    switches: Option<f64>,
}

/// One round on one target: a second of warm-up, saturation, a pause, then the fixed rate.
async fn measure(args: &Args, url: &str, pid: Option<u32>, body: &bytes::Bytes) -> Sample {
    let _ = saturate(url, body, args.concurrency, 1).await;
    let cpu0 = pid.map(cpu_time);
    let mut sat = saturate(url, body, args.concurrency, args.seconds).await;
    let cpu = pid
        .zip(cpu0)
        .map(|(p, c)| cpu_us_per(p, c, sat.ok + sat.errors));
    settle().await;
    let cpu0 = pid.map(cpu_time);
    let counts0 = pid.map(faults_and_switches);
    let mut fixed = fixed_rate(url, body, args.rate, args.seconds.min(5)).await;
    let n = fixed.ok + fixed.errors;
    let fixed_cpu = pid.zip(cpu0).map(|(p, c)| cpu_us_per(p, c, n));
    let counts = pid.zip(counts0).map(|(pid, (f0, s0))| {
        let (f, s) = faults_and_switches(pid);
        let n = n.max(1) as f64;
        (
            f.saturating_sub(f0) as f64 / n,
            s.saturating_sub(s0) as f64 / n,
        )
    });
    Sample {
        rps: sat.rps(),
        p50: sat.percentile(0.5),
        p99: sat.percentile(0.99),
        errors: sat.errors + fixed.errors,
        cpu,
        fixed_p50: fixed.percentile(0.5),
        fixed_p99: fixed.percentile(0.99),
        fixed_cpu,
        faults: counts.map(|c| c.0),
        switches: counts.map(|c| c.1),
    }
}

/// A pause between saturation and the fixed rate, so that what saturation left the proxy to do
/// (the router's ledger flush of its last second of request rows, up to tens of thousands, and
/// the closing of its connections) is not counted in the fixed rate's CPU.
pub(crate) async fn settle() {
    tokio::time::sleep(Duration::from_secs(3)).await;
}

/// The median of what `figure` reads from each round.
fn median_of<T: PartialOrd + Copy>(rounds: &[Sample], figure: impl Fn(&Sample) -> T) -> T {
    let mut v: Vec<T> = rounds.iter().map(figure).collect();
    v.sort_by(|a, b| a.partial_cmp(b).unwrap_or(std::cmp::Ordering::Equal));
    v[v.len() / 2]
}

/// A CPU figure: the median, and the range when there was more than one round.
fn cpu_cell(rounds: &[Sample], figure: impl Fn(&Sample) -> Option<f64>) -> String {
    range_cell(rounds.iter().filter_map(figure).collect())
}

/// A CPU figure in µs from the values of each round: the median, and the range when there
/// was more than one.
pub(crate) fn range_cell(v: Vec<f64>) -> String {
    spread_cell(v, |m| format!("{m:.1} µs"), |b| format!("{b:.0}"), "–")
}

/// The median of `v`, and in brackets its least and greatest when it holds more than one value
/// (joined by `to`); the median written by `median`, the bounds by `bound`.
pub(crate) fn spread_cell(
    mut v: Vec<f64>,
    median: impl Fn(f64) -> String,
    bound: impl Fn(f64) -> String,
    to: &str,
) -> String {
    v.retain(|x| x.is_finite());
    v.sort_by(f64::total_cmp);
    match v.as_slice() {
        [] => "–".into(),
        [one] => median(*one),
        [least, .., greatest] => format!(
            "{} ({}{to}{})",
            median(v[v.len() / 2]),
            bound(*least),
            bound(*greatest)
        ),
    }
}

/// Saturation and fixed rate, for each target and body size: `--rounds` rounds, the targets
/// in turns within each, so that a slow moment of the machine falls on all of them.
pub(crate) async fn requests(args: &Args, report: &mut String, direct: &str, proxies: &[Proxy]) {
    let rounds = args.rounds.max(1);
    let _ = writeln!(report, "## Non-streamed requests\n");
    if rounds > 1 {
        let _ = writeln!(
            report,
            "Each figure is the median of {rounds} rounds, the targets measured in turns within each; CPU figures give the range of the rounds in brackets.\n"
        );
    }
    let rate = args.rate;
    let _ = writeln!(
        report,
        "| target | body | req/s at saturation | p50 | p99 | errors | proxy CPU per request | p50 at {rate} req/s | p99 at {rate} req/s | proxy CPU per request at {rate} req/s | page faults, context switches per request at {rate} req/s |",
    );
    let _ = writeln!(report, "|---|---|---|---|---|---|---|---|---|---|---|");
    let sizes: &[usize] = if args.quick {
        &[1024]
    } else {
        &[1024, 32 * 1024]
    };
    let mut targets: Vec<(&str, &str, Option<u32>)> = vec![("direct to mock", direct, None)];
    targets.extend(
        proxies
            .iter()
            .map(|p| (p.name, p.url.as_str(), Some(p.pid))),
    );
    let mut ratios = Vec::new();
    for &size in sizes {
        let body = chat_body(size, false);
        let mut samples: Vec<Vec<Sample>> = targets.iter().map(|_| Vec::new()).collect();
        for round in 0..rounds {
            for ((name, url, pid), kept) in targets.iter().zip(&mut samples) {
                kept.push(measure(args, url, *pid, &body).await);
                eprintln!("done: {name} {size} (round {})", round + 1);
            }
        }
        for ((name, _, _), s) in targets.iter().zip(&samples) {
            let counts = match (median_of(s, |x| x.faults), median_of(s, |x| x.switches)) {
                (Some(f), Some(c)) => format!("{f:.2}, {c:.2}"),
                _ => "–".into(),
            };
            let _ = writeln!(
                report,
                "| {name} | {} KB | {:.0} | {} µs | {} µs | {} | {} | {} µs | {} µs | {} | {counts} |",
                size / 1024,
                median_of(s, |x| x.rps),
                us(median_of(s, |x| x.p50)),
                us(median_of(s, |x| x.p99)),
                s.iter().map(|x| x.errors).sum::<u64>(),
                cpu_cell(s, |x| x.cpu),
                us(median_of(s, |x| x.fixed_p50)),
                us(median_of(s, |x| x.fixed_p99)),
                cpu_cell(s, |x| x.fixed_cpu),
            );
        }
        let nginx = targets.iter().position(|t| t.0 == "nginx");
        for (i, (name, _, _)) in targets.iter().enumerate().skip(1) {
            if let Some(n) = nginx.filter(|&n| n != i) {
                ratios.push(ratio_row(name, size, &samples[i], &samples[n]));
            }
        }
    }
    if !ratios.is_empty() {
        let _ = writeln!(
            report,
            "\nEach proxy against nginx, round by round: the ratio of the two figures of the same round (measured within a minute of each other), the median of the rounds and their range in brackets. A slow moment of the machine moves both figures of a round, so these ratios move less than the medians above divided.\n\n| target | body | CPU per request at saturation ÷ nginx's | CPU per request at {rate} req/s ÷ nginx's | p99 at {rate} req/s ÷ nginx's |\n|---|---|---|---|---|"
        );
        for row in ratios {
            let _ = writeln!(report, "{row}");
        }
    }
}

/// One proxy's figures over nginx's, round by round, as a table row.
fn ratio_row(name: &str, size: usize, proxy: &[Sample], nginx: &[Sample]) -> String {
    let of = |figure: &dyn Fn(&Sample) -> Option<f64>| {
        ratio_cell(
            proxy
                .iter()
                .zip(nginx)
                .filter_map(|(p, n)| Some(figure(p)? / figure(n)?))
                .collect(),
        )
    };
    format!(
        "| {name} | {} KB | {} | {} | {} |",
        size / 1024,
        of(&|x| x.cpu),
        of(&|x| x.fixed_cpu),
        of(&|x| Some(x.fixed_p99.as_secs_f64())),
    )
}

/// Ratios of each round: the median, and the range when there was more than one.
fn ratio_cell(v: Vec<f64>) -> String {
    spread_cell(v, |m| format!("{m:.2}×"), |b| format!("{b:.2}"), "–")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample(cpu: Option<f64>, fixed_cpu: f64, p99_ms: u64) -> Sample {
        Sample {
            cpu,
            fixed_cpu: Some(fixed_cpu),
            fixed_p99: Duration::from_millis(p99_ms),
            ..Sample::default()
        }
    }

    #[test]
    fn a_proxy_against_nginx_is_the_median_of_each_rounds_ratio() {
        // Round by round 1.5, 2.0 and 1.0 at saturation: the median of the ratios is 1.5,
        // where the medians divided (40 / 20) would say 2.0.
        let proxy = [
            sample(Some(30.0), 150.0, 3),
            sample(Some(40.0), 200.0, 2),
            sample(Some(50.0), 100.0, 1),
        ];
        let nginx = [
            sample(Some(20.0), 100.0, 2),
            sample(Some(20.0), 100.0, 2),
            sample(Some(50.0), 100.0, 2),
        ];
        assert_eq!(
            ratio_row("llm-router", 1024, &proxy, &nginx),
            "| llm-router | 1 KB | 1.50× (1.00–2.00) | 1.50× (1.00–2.00) | 1.00× (0.50–1.50) |"
        );
    }

    #[test]
    fn a_figure_missing_from_a_round_leaves_that_round_out() {
        let proxy = [sample(None, 100.0, 1), sample(Some(30.0), 100.0, 1)];
        let nginx = [sample(Some(20.0), 50.0, 1), sample(Some(20.0), 50.0, 1)];
        assert_eq!(
            ratio_row("bare hyper proxy", 32 * 1024, &proxy, &nginx),
            "| bare hyper proxy | 32 KB | 1.50× | 2.00× (2.00–2.00) | 1.00× (1.00–1.00) |"
        );
        assert_eq!(ratio_row("x", 1024, &[], &[]), "| x | 1 KB | – | – | – |");
    }

    #[test]
    fn spreads_keep_their_own_units() {
        assert_eq!(range_cell(vec![37.2, 42.1, 54.0]), "42.1 µs (37–54)");
        assert_eq!(range_cell(vec![]), "–");
        let pct = |x: f64| format!("{:+.0}%", x * 100.0);
        assert_eq!(
            spread_cell(vec![0.24, -0.06, 0.12], pct, pct, " to "),
            "+12% (-6% to +24%)"
        );
    }
}
