//! The TCP stream under an upstream connection, telling the pool nothing but that it is one.
//!
//! hyper-util's `TcpStream` reports its addresses (`HttpInfo`) as an extra of the connection,
//! and the pool then inserts a copy into every response's extensions: an extensions map
//! allocated and dropped per response, about 800 instructions and three allocations, for
//! addresses the router never reads. This stream reports a plain connection instead; a
//! CONNECT tunnel is no proxy in hyper-util's sense (the request keeps its origin form), so
//! nothing else it reported is lost.

use hyper_util::client::legacy::connect::{Connected, Connection};
use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;

/// A connected `TcpStream`, read and written as it is.
pub(crate) struct Plain(pub(crate) TcpStream);

impl Connection for Plain {
    fn connected(&self) -> Connected {
        Connected::new()
    }
}

impl AsyncRead for Plain {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.0).poll_read(cx, buf)
    }
}

impl AsyncWrite for Plain {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.0).poll_write(cx, buf)
    }
    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.0).poll_write_vectored(cx, bufs)
    }
    fn is_write_vectored(&self) -> bool {
        self.0.is_write_vectored()
    }
    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.0).poll_flush(cx)
    }
    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.0).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::super::{build_client, ProxyRoute};
    use bytes::Bytes;
    use http_body_util::{BodyExt, Full};
    use hyper_util::client::legacy::connect::HttpInfo;
    use std::time::Duration;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::net::TcpListener;

    /// An upstream that answers `ok` to each request on one connection, then closes.
    async fn upstream(listener: TcpListener, answers: usize) {
        let (mut conn, _) = listener.accept().await.unwrap();
        let mut seen = Vec::new();
        for _ in 0..answers {
            while !seen.windows(4).any(|w| w == b"\r\n\r\n") {
                let mut buf = [0; 1024];
                let n = conn.read(&mut buf).await.unwrap();
                assert!(n > 0, "the client closed before its request");
                seen.extend_from_slice(&buf[..n]);
            }
            seen.clear();
            let answer = b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok";
            conn.write_all(answer).await.unwrap();
        }
    }

    #[tokio::test]
    async fn responses_carry_no_addresses_and_the_connection_is_pooled() {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/", listener.local_addr().unwrap());
        // One connection only: a second request that could not reuse it would find no one.
        let server = tokio::spawn(upstream(listener, 2));
        let client = build_client(None, Duration::from_secs(5), &ProxyRoute::Direct).unwrap();
        for _ in 0..2 {
            let request = http::Request::get(&url)
                .body(Full::new(Bytes::new()))
                .unwrap();
            let response = client.request(request).await.unwrap();
            assert!(response.extensions().get::<HttpInfo>().is_none());
            let body = response.into_body().collect().await.unwrap().to_bytes();
            assert_eq!(&body[..], b"ok");
        }
        server.await.unwrap();
    }
}
