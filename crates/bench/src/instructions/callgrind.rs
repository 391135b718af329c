//! Processes under callgrind: started, their counters zeroed and dumped on command
//! (`callgrind_control`), and the instructions of a dump read back.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A process running under callgrind. Killed when dropped.
pub(crate) struct Counted {
    child: Child,
    out: PathBuf,
    dumps: u32,
}

impl Counted {
    /// Starts `program` under callgrind, its dumps written to `dir`.
    pub(crate) fn start(
        program: &Path,
        args: &[String],
        dir: &Path,
        env: &[(&str, &str)],
    ) -> Result<Self, String> {
        let name = program
            .file_name()
            .map_or("program".into(), |n| n.to_string_lossy());
        let out = dir.join(format!("callgrind.{name}.out"));
        let child = Command::new("valgrind")
            .arg("--tool=callgrind")
            .arg(format!("--callgrind-out-file={}", out.display()))
            .arg(program)
            .args(args)
            .current_dir(dir)
            .envs(env.iter().copied())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .map_err(|e| format!("valgrind: {e} (apt-get install valgrind)"))?;
        Ok(Self {
            child,
            out,
            dumps: 0,
        })
    }

    /// Sets the counters to zero.
    pub(crate) fn zero(&mut self) -> Result<(), String> {
        control(self.child.id(), "--zero")
    }

    /// Instructions executed since the last zero.
    pub(crate) fn dump(&mut self) -> Result<u64, String> {
        control(self.child.id(), "--dump")?;
        self.dumps += 1;
        let path = PathBuf::from(format!("{}.{}", self.out.display(), self.dumps));
        // callgrind_control returns once the command is taken; the file follows.
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Some(n) = std::fs::read_to_string(&path)
                .ok()
                .and_then(|t| summary(&t))
            {
                return Ok(n);
            }
            if Instant::now() > deadline {
                return Err(format!("no callgrind dump at {}", path.display()));
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Counted {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn control(pid: u32, what: &str) -> Result<(), String> {
    let out = Command::new("callgrind_control")
        .args([what, &pid.to_string()])
        .output()
        .map_err(|e| format!("callgrind_control: {e}"))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(format!(
            "callgrind_control {what} {pid}: {}",
            String::from_utf8_lossy(&out.stderr)
        ))
    }
}

/// Runs `program` to its end under callgrind; its instructions.
pub(crate) fn run_to_end(program: &Path, args: &[String], dir: &Path) -> Result<u64, String> {
    let out = dir.join(format!("callgrind.run.{}", args.join("-")));
    let status = Command::new("valgrind")
        .arg("--tool=callgrind")
        .arg(format!("--callgrind-out-file={}", out.display()))
        .arg(program)
        .args(args)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .map_err(|e| format!("valgrind: {e} (apt-get install valgrind)"))?;
    if !status.success() {
        return Err(format!(
            "{} {args:?} under callgrind: {status}",
            program.display()
        ));
    }
    let text = std::fs::read_to_string(&out).map_err(|e| format!("{}: {e}", out.display()))?;
    summary(&text).ok_or_else(|| format!("{}: no summary line", out.display()))
}

/// The `summary:` line of a callgrind dump: instructions, the only event counted.
fn summary(text: &str) -> Option<u64> {
    text.lines()
        .find_map(|l| l.strip_prefix("summary:"))
        .and_then(|n| n.trim().parse().ok())
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_dump_is_read_for_its_summary() {
        let dump = "version: 1\ncreator: callgrind-3.19.0\nevents: Ir\nsummary: 2421753\n\nfn=(1) main\n1 5\ntotals: 2428758\n";
        assert_eq!(super::summary(dump), Some(2_421_753));
        assert_eq!(super::summary("events: Ir\n"), None);
    }
}
