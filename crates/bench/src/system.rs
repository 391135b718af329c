//! The machine: pinning to cores, open-file limits, CPU time and memory of a process.

use std::process::Command;
use std::time::Duration;

pub(crate) fn run_tool(program: &str, args: &[String]) -> Option<String> {
    let out = Command::new(program).args(args).output().ok()?;
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).trim().to_string())
}

/// Pins this process (every thread) to `cores`, with util-linux's `taskset`.
pub(crate) fn pin_self(cores: &[usize]) {
    let list: Vec<String> = cores.iter().map(usize::to_string).collect();
    let pid = std::process::id().to_string();
    if run_tool(
        "taskset",
        &["-a".into(), "-p".into(), "-c".into(), list.join(","), pid],
    )
    .is_none()
    {
        eprintln!("taskset failed: the bench is not pinned");
    }
}

/// Raises this process's open-file limit to its hard maximum, with util-linux's `prlimit`
/// (10,000 streams need some 40,000 sockets); children inherit it.
pub(crate) fn raise_fd_limit() -> u64 {
    let pid = std::process::id().to_string();
    let hard = run_tool(
        "prlimit",
        &[
            "--pid".into(),
            pid.clone(),
            "--nofile".into(),
            "--output".into(),
            "HARD".into(),
            "--noheadings".into(),
        ],
    )
    .and_then(|h| h.parse::<u64>().ok())
    .unwrap_or(1024);
    // As root the hard limit itself may be raised: 10,000 streams need more than the usual.
    for limit in [hard.max(262_144), hard] {
        let set = run_tool(
            "prlimit",
            &[
                "--pid".into(),
                pid.clone(),
                format!("--nofile={limit}:{limit}"),
            ],
        );
        if set.is_some() {
            return limit;
        }
    }
    hard
}

/// The CPU time `pid` used since `before` (a [`cpu_time`]), in µs per one of `n` requests.
pub(crate) fn cpu_us_per(pid: u32, before: Duration, n: u64) -> f64 {
    cpu_time(pid).saturating_sub(before).as_secs_f64() * 1e6 / n.max(1) as f64
}

/// Minor page faults of `pid`, and context switches (voluntary or not) of all its threads,
/// so far.
pub(crate) fn faults_and_switches(pid: u32) -> (u64, u64) {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    let rest = stat.rsplit_once(") ").map_or("", |(_, r)| r);
    let faults = rest
        .split_whitespace()
        .nth(7)
        .and_then(|f| f.parse().ok())
        .unwrap_or(0);
    let mut switches = 0;
    if let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) {
        for task in tasks.flatten() {
            let status = std::fs::read_to_string(task.path().join("status")).unwrap_or_default();
            switches += status
                .lines()
                .filter(|l| l.contains("ctxt_switches:"))
                .filter_map(|l| l.split_whitespace().nth(1)?.parse::<u64>().ok())
                .sum::<u64>();
        }
    }
    (faults, switches)
}

/// CPU time (user + system) of `pid`, from /proc.
pub(crate) fn cpu_time(pid: u32) -> Duration {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    // Fields after the command name (which may hold spaces) start at ") ".
    let rest = stat.rsplit_once(") ").map_or("", |(_, r)| r);
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let ticks: u64 = fields.get(11).and_then(|f| f.parse().ok()).unwrap_or(0)
        + fields.get(12).and_then(|f| f.parse().ok()).unwrap_or(0);
    let hz = run_tool("getconf", &["CLK_TCK".into()])
        .and_then(|h| h.parse::<u64>().ok())
        .unwrap_or(100)
        .max(1);
    Duration::from_micros(ticks * 1_000_000 / hz)
}

/// Resident memory of `pid`, in KiB.
pub(crate) fn rss_kib(pid: u32) -> u64 {
    status_kib(pid, "VmRSS:")
}

/// The peak resident memory of `pid`, in KiB.
pub(crate) fn peak_rss_kib(pid: u32) -> u64 {
    status_kib(pid, "VmHWM:")
}

fn status_kib(pid: u32, field: &str) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix(field))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
        .unwrap_or(0)
}

pub(crate) fn machine() -> String {
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix("model name"))
        .map(|m| m.trim_start_matches([' ', '\t', ':']).to_string())
        .unwrap_or_else(|| "unknown CPU".into());
    let cores = std::fs::read_to_string("/proc/cpuinfo")
        .unwrap_or_default()
        .lines()
        .filter(|l| l.starts_with("processor"))
        .count();
    let mem = std::fs::read_to_string("/proc/meminfo")
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix("MemTotal:"))
        .map(|m| m.trim().to_string())
        .unwrap_or_default();
    format!("{cpu}, {cores} cores, {mem} RAM")
}

/// Open files of `pid`.
pub(crate) fn open_files(pid: u32) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/fd")).map_or(0, |d| d.count())
}
