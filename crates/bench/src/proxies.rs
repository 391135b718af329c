//! The proxies under test: llm-router and nginx, each started pinned to its core.

use crate::system::*;
use mock_upstream::MockUpstream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A proxy process under test.
pub(crate) struct Proxy {
    pub(crate) name: &'static str,
    pub(crate) url: String,
    pub(crate) child: Child,
    /// The process doing the work (nginx's worker, the router itself).
    pub(crate) pid: u32,
}

impl Drop for Proxy {
    /// SIGTERM, and SIGKILL after 10 seconds (a profiler wrapping the proxy writes its data
    /// when the proxy exits).
    fn drop(&mut self) {
        let _ = run_tool("kill", &["-TERM".into(), self.child.id().to_string()]);
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub(crate) fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map_or(0, |a| a.port())
}

pub(crate) fn wait_port(port: u16) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while Instant::now() < deadline {
        if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
            return;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// The router's config: the mock as its one provider; its spans to `traces` when given.
pub(crate) fn router_config(dir: &Path, mock: &MockUpstream, traces: Option<&str>) -> PathBuf {
    let path = dir.join("config.yaml");
    let telemetry = traces.map_or(String::new(), |url| {
        format!("telemetry: {{otlp_endpoint: \"{url}\", sample_ratio: 1}}\n")
    });
    let yaml = format!(
        "{telemetry}api_key: bench-key\nledger: {{enabled: true}}\ngroups:\n  - name: g\n    models: [{{provider: mock, name: bench-model}}]\nproviders:\n  - {{name: mock, base_url: \"{}\", api_key: sk-bench}}\n",
        mock.base_url()
    );
    let _ = std::fs::write(&path, yaml);
    path
}

pub(crate) fn start_router(bin: &Path, dir: &Path, config: &Path, core: usize) -> Proxy {
    let port = free_port();
    // The child runs in `dir`: the binary's path must not be relative.
    let bin = std::fs::canonicalize(bin).unwrap_or_else(|e| {
        panic!(
            "{}: {e} (cargo build --release -p router-bin)",
            bin.display()
        )
    });
    let child = Command::new("taskset")
        .args(["-c", &core.to_string()])
        .arg(&bin)
        .args(["--config"])
        .arg(config)
        .args(["--listen", &format!("127.0.0.1:{port}")])
        .current_dir(dir)
        .env("RUST_LOG", "info")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start {}: {e}", bin.display()));
    wait_port(port);
    let pid = child.id();
    Proxy {
        name: "llm-router",
        url: format!("http://127.0.0.1:{port}/v1/chat/completions"),
        child,
        pid,
    }
}

/// The bare hyper proxy (`bareproxy`): the router's HTTP stack without the router.
pub(crate) fn start_bare(bin: &Path, mock: &MockUpstream, core: usize) -> Option<Proxy> {
    let port = free_port();
    let child = Command::new("taskset")
        .args(["-c", &core.to_string()])
        .arg(bin)
        .args(["--listen", &format!("127.0.0.1:{port}")])
        .args(["--upstream", &format!("http://{}", mock.addr())])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .ok()?;
    wait_port(port);
    let pid = child.id();
    Some(Proxy {
        name: "bare hyper proxy",
        url: format!("http://127.0.0.1:{port}/v1/chat/completions"),
        child,
        pid,
    })
}

pub(crate) fn start_nginx(dir: &Path, mock: &MockUpstream, core: usize) -> Option<Proxy> {
    let port = free_port();
    let conf = dir.join("nginx.conf");
    let text = format!(
        "daemon off;\nworker_processes 1;\nerror_log {dir}/nginx-error.log warn;\npid {dir}/nginx.pid;\nevents {{ worker_connections 65536; }}\nhttp {{\n  access_log /dev/null;\n  client_body_temp_path {dir};\n  proxy_temp_path {dir};\n  upstream mock {{ server {upstream}; keepalive 512; }}\n  server {{\n    listen 127.0.0.1:{port};\n    client_max_body_size 10m;\n    location / {{\n      proxy_pass http://mock;\n      proxy_http_version 1.1;\n      proxy_set_header Connection \"\";\n      proxy_buffering off;\n      proxy_request_buffering off;\n    }}\n  }}\n}}\n",
        dir = dir.display(),
        upstream = mock.addr(),
    );
    std::fs::write(&conf, text).ok()?;
    let child = Command::new("taskset")
        .args(["-c", &core.to_string()])
        .arg("nginx")
        .args(["-c"])
        .arg(&conf)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .ok()?;
    wait_port(port);
    // The worker is the master's child.
    let master = child.id();
    let children = std::fs::read_to_string(format!("/proc/{master}/task/{master}/children"))
        .unwrap_or_default();
    let pid = children
        .split_whitespace()
        .next()
        .and_then(|p| p.parse().ok())
        .unwrap_or(master);
    Some(Proxy {
        name: "nginx",
        url: format!("http://127.0.0.1:{port}/v1/chat/completions"),
        child,
        pid,
    })
}
