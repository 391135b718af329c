//! HTTPS on the router's listeners (`server.tls`): rustls with HTTP/2 and HTTP/1.1 offered by
//! ALPN, and a certificate that follows its files. When the certificate or key file changes
//! (a renewal, a Kubernetes secret's symlink swap), the pair is read again and served to every
//! new handshake; a pair that cannot be used is logged and the one before keeps serving.

use arc_swap::ArcSwap;
use router_core::TlsFiles;
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;
use std::future::Future;
use std::sync::Arc;
use tokio::net::TcpStream;
use tokio::task::JoinHandle;
use tokio_rustls::server::TlsStream;
use tokio_rustls::TlsAcceptor;

/// A listener's TLS: the acceptor and the certificate it serves.
pub(crate) struct ListenerTls {
    acceptor: TlsAcceptor,
    certificate: Arc<Certificate>,
}

/// The certificate pair served now, and the files it comes from.
#[derive(Debug)]
struct Certificate {
    files: TlsFiles,
    current: ArcSwap<CertifiedKey>,
}

impl ResolvesServerCert for Certificate {
    fn resolve(&self, _hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        Some(self.current.load_full())
    }
}

impl ListenerTls {
    /// Reads the pair `files` names; the error says which file is wrong and how.
    pub(crate) fn new(files: &TlsFiles) -> Result<Arc<Self>, String> {
        let first = files.load()?;
        let certificate = Arc::new(Certificate {
            files: files.clone(),
            current: ArcSwap::new(first),
        });
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let mut config = rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|e| format!("server.tls: {e}"))?
            .with_no_client_auth()
            .with_cert_resolver(certificate.clone());
        config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
        Ok(Arc::new(Self {
            acceptor: TlsAcceptor::from(Arc::new(config)),
            certificate,
        }))
    }

    /// Completes a client's handshake.
    pub(crate) async fn accept(&self, stream: TcpStream) -> std::io::Result<TlsStream<TcpStream>> {
        self.acceptor.accept(stream).await
    }

    /// Reads the files again whenever they change, until `stop`.
    pub(crate) fn watch(
        self: &Arc<Self>,
        stop: impl Future<Output = ()> + Send + 'static,
    ) -> Result<JoinHandle<()>, String> {
        let files = &self.certificate.files;
        let paths = vec![files.cert_file.clone(), files.key_file.clone()];
        let tls = self.clone();
        router_core::watch_files(paths, move || tls.reload(), stop)
            .map_err(|e| format!("cannot watch the TLS certificate's files: {e}"))
    }

    /// Reads the pair again: a new one serves the next handshakes; one that cannot be used is
    /// logged and the current one kept.
    pub(crate) fn reload(&self) {
        let files = &self.certificate.files;
        match files.load() {
            Ok(new) => {
                if new.cert != self.certificate.current.load().cert {
                    self.certificate.current.store(new);
                    tracing::info!(
                        "TLS certificate reloaded from {}",
                        files.cert_file.display()
                    );
                }
            }
            Err(e) => tracing::error!(
                "TLS certificate cannot be used; still serving the previous one: {e}"
            ),
        }
    }
}
