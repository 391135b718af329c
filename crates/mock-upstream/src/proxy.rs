//! A forward proxy that opens CONNECT tunnels, for tests of upstream calls through a proxy:
//! it notes each tunnel asked for (its target and `Proxy-Authorization`), and either pipes
//! bytes both ways or refuses every tunnel with 403.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};

/// One CONNECT the proxy was asked for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TunnelAsked {
    /// `host:port` of the request line.
    pub target: String,
    /// The `Proxy-Authorization` header, if sent.
    pub auth: Option<String>,
}

/// The proxy, serving until dropped.
pub struct ConnectProxy {
    addr: SocketAddr,
    asked: Arc<Mutex<Vec<TunnelAsked>>>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for ConnectProxy {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl ConnectProxy {
    /// Starts a proxy on a free local port; with `refuse`, every tunnel gets 403.
    pub async fn start(refuse: bool) -> std::io::Result<Self> {
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let asked = Arc::new(Mutex::new(Vec::new()));
        let noted = asked.clone();
        let task = tokio::spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                let noted = noted.clone();
                tokio::spawn(async move {
                    let _ = tunnel(client, refuse, &noted).await;
                });
            }
        });
        Ok(ConnectProxy { addr, asked, task })
    }

    /// `http://127.0.0.1:<port>`.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// The tunnels asked for so far.
    pub fn asked(&self) -> Vec<TunnelAsked> {
        self.asked.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }
}

/// Serves one connection: reads its CONNECT, then pipes or refuses.
async fn tunnel(
    client: TcpStream,
    refuse: bool,
    noted: &Mutex<Vec<TunnelAsked>>,
) -> std::io::Result<()> {
    let mut reader = BufReader::new(client);
    let mut line = String::new();
    reader.read_line(&mut line).await?;
    let mut parts = line.split_whitespace();
    let (method, target) = (parts.next().unwrap_or(""), parts.next().unwrap_or(""));
    let target = target.to_string();
    let mut auth = None;
    loop {
        let mut header = String::new();
        if reader.read_line(&mut header).await? == 0 || header.trim().is_empty() {
            break;
        }
        if let Some((name, value)) = header.split_once(':') {
            if name.trim().eq_ignore_ascii_case("proxy-authorization") {
                auth = Some(value.trim().to_string());
            }
        }
    }
    noted
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .push(TunnelAsked {
            target: target.clone(),
            auth,
        });
    let mut client = reader.into_inner();
    if method != "CONNECT" || refuse {
        client
            .write_all(b"HTTP/1.1 403 Forbidden\r\ncontent-length: 0\r\n\r\n")
            .await?;
        return Ok(());
    }
    let mut upstream = match TcpStream::connect(&target).await {
        Ok(u) => u,
        Err(_) => {
            client
                .write_all(b"HTTP/1.1 502 Bad Gateway\r\ncontent-length: 0\r\n\r\n")
                .await?;
            return Ok(());
        }
    };
    client
        .write_all(b"HTTP/1.1 200 Connection Established\r\n\r\n")
        .await?;
    tokio::io::copy_bidirectional(&mut client, &mut upstream).await?;
    Ok(())
}
