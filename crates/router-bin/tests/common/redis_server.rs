//! A real `redis-server` (the Debian package) on a free port, for one test: started, stopped
//! and started again on the same port, killed with the test.

use std::net::TcpListener;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

pub struct RedisServer {
    pub port: u16,
    /// The password it asks for (`requirepass`), if any.
    password: Option<String>,
    /// Its folder of certificates when it speaks TLS only.
    tls: Option<PathBuf>,
    child: Option<Child>,
}

impl RedisServer {
    /// Starts one on a free port, with no persistence: a restart comes back empty, as a Redis
    /// without a disk would.
    pub async fn start() -> Self {
        Self::start_with(None).await
    }

    /// Starts one that asks for `password` (AUTH).
    pub async fn start_with(password: Option<&str>) -> Self {
        let port = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let password = password.map(str::to_string);
        let mut server = Self {
            port,
            password,
            tls: None,
            child: None,
        };
        server.restart().await;
        server
    }

    /// Starts one that speaks TLS only, with a certificate of a CA of its own (`ca_file`).
    pub async fn start_tls() -> Self {
        let port = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let dir = std::env::temp_dir().join(format!(
            "llm-router-redis-tls-{}-{port}",
            std::process::id()
        ));
        std::fs::create_dir_all(&dir).unwrap();
        let certs = mock_upstream::test_certificates().unwrap();
        std::fs::write(dir.join("ca.pem"), &certs.ca_pem).unwrap();
        std::fs::write(dir.join("cert.pem"), &certs.cert_pem).unwrap();
        std::fs::write(dir.join("key.pem"), &certs.key_pem).unwrap();
        let mut server = Self {
            port,
            password: None,
            tls: Some(dir),
            child: None,
        };
        server.restart().await;
        server
    }

    pub fn url(&self) -> String {
        let scheme = if self.tls.is_some() {
            "rediss"
        } else {
            "redis"
        };
        match &self.password {
            Some(p) => format!("{scheme}://:{p}@127.0.0.1:{}", self.port),
            None => format!("{scheme}://127.0.0.1:{}", self.port),
        }
    }

    /// The CA its TLS certificate chains to (a TLS server only).
    pub fn ca_file(&self) -> PathBuf {
        self.tls.as_ref().expect("a TLS server").join("ca.pem")
    }

    fn client(&self) -> redis::Client {
        match &self.tls {
            None => redis::Client::open(self.url()).unwrap(),
            Some(_) => redis::Client::build_with_tls(
                self.url(),
                redis::TlsCertificates {
                    client_tls: None,
                    root_cert: Some(std::fs::read(self.ca_file()).unwrap()),
                },
            )
            .unwrap(),
        }
    }

    /// Starts it (again) on its port, and waits until it answers.
    pub async fn restart(&mut self) {
        assert!(self.child.is_none(), "already running");
        let mut command = Command::new("redis-server");
        let port = self.port.to_string();
        match &self.tls {
            None => command.args(["--port", &port]),
            Some(dir) => {
                let file = |name: &str| dir.join(name).display().to_string();
                command
                    .args(["--port", "0", "--tls-port", &port])
                    .args(["--tls-cert-file", &file("cert.pem")])
                    .args(["--tls-key-file", &file("key.pem")])
                    .args(["--tls-ca-cert-file", &file("ca.pem")])
                    .args(["--tls-auth-clients", "no"])
            }
        };
        command.args(["--bind", "127.0.0.1"]).args([
            "--save",
            "",
            "--appendonly",
            "no",
            "--protected-mode",
            "no",
        ]);
        if let Some(p) = &self.password {
            command.args(["--requirepass", p]);
        }
        let child = command
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("redis-server (Debian package redis-server) must be installed");
        self.child = Some(child);
        let client = self.client();
        for _ in 0..250 {
            if let Ok(mut c) = client.get_multiplexed_async_connection().await {
                let pong: redis::RedisResult<String> = redis::cmd("PING").query_async(&mut c).await;
                if pong.is_ok() {
                    return;
                }
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        panic!("redis-server did not answer on port {}", self.port);
    }

    /// Kills it (SIGKILL: what it held is gone).
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            // A paused one dies of SIGKILL all the same.
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Stops it without closing anything (SIGSTOP): it holds its data and its connections
    /// but answers nothing, as a Redis stuck in a long command or a partitioned one would.
    pub fn pause(&self) {
        self.signal("-STOP");
    }

    /// Lets a paused one go on (SIGCONT).
    pub fn resume(&self) {
        self.signal("-CONT");
    }

    fn signal(&self, signal: &str) {
        let pid = self.child.as_ref().expect("running").id().to_string();
        let status = Command::new("kill").args([signal, &pid]).status().unwrap();
        assert!(status.success(), "kill {signal} {pid}");
    }

    /// A connection for the test's own reads.
    pub async fn connection(&self) -> redis::aio::MultiplexedConnection {
        self.client()
            .get_multiplexed_async_connection()
            .await
            .unwrap()
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        self.kill();
        if let Some(dir) = &self.tls {
            let _ = std::fs::remove_dir_all(dir);
        }
    }
}
