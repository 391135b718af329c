//! The certificate of the router's own listeners (`server.tls`): where its files are, and how
//! they are read into what rustls serves. The server reads them at start and again whenever they
//! change; `llm-router check` reads them too.

use rustls::crypto::ring::default_provider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::sign::CertifiedKey;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// The certificate chain and private key files of `server.tls`, resolved against the config
/// file's folder.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsFiles {
    /// The chain, PEM, the server's certificate first.
    pub cert_file: PathBuf,
    /// Its private key, PEM.
    pub key_file: PathBuf,
}

impl TlsFiles {
    /// Reads both files: a chain of at least one certificate and a private key that matches the
    /// first one. The error names the file and what is wrong with it, never the key's bytes.
    pub fn load(&self) -> Result<Arc<CertifiedKey>, String> {
        let chain = read_chain(&self.cert_file)?;
        let key = read_key(&self.key_file)?;
        let certified = CertifiedKey::from_der(chain, key, &default_provider()).map_err(|e| {
            format!(
                "the key in {} does not go with the certificate in {}: {e}",
                self.key_file.display(),
                self.cert_file.display()
            )
        })?;
        Ok(Arc::new(certified))
    }
}

fn read_chain(path: &Path) -> Result<Vec<CertificateDer<'static>>, String> {
    let pem = std::fs::read(path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    let chain = CertificateDer::pem_slice_iter(&pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| format!("{} is not a PEM certificate chain: {e}", path.display()))?;
    if chain.is_empty() {
        return Err(format!("{} holds no certificate", path.display()));
    }
    Ok(chain)
}

fn read_key(path: &Path) -> Result<PrivateKeyDer<'static>, String> {
    let pem = std::fs::read(path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    PrivateKeyDer::from_pem_slice(&pem).map_err(|e| {
        format!(
            "{} holds no PEM private key (PKCS #8, PKCS #1 or SEC1): {e}",
            path.display()
        )
    })
}

/// Where `path` of the config is: as written when absolute, else in the config file's folder
/// (the working directory for a config without a file).
pub(super) fn resolve(path: &str, config_file: Option<&Path>) -> PathBuf {
    let path = PathBuf::from(path);
    match config_file.and_then(Path::parent) {
        Some(folder) if path.is_relative() && !folder.as_os_str().is_empty() => folder.join(path),
        _ => path,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn relative_files_are_found_next_to_the_config() {
        let config = Path::new("/etc/llm-router/config.yaml");
        assert_eq!(
            resolve("tls/cert.pem", Some(config)),
            Path::new("/etc/llm-router/tls/cert.pem")
        );
        assert_eq!(
            resolve("/srv/cert.pem", Some(config)),
            Path::new("/srv/cert.pem")
        );
        assert_eq!(
            resolve("cert.pem", Some(Path::new("config.yaml"))),
            Path::new("cert.pem")
        );
        assert_eq!(resolve("cert.pem", None), Path::new("cert.pem"));
    }

    #[test]
    fn a_file_that_is_not_pem_is_named_in_the_error() {
        let dir = std::env::temp_dir().join(format!("llm-router-tls-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let (cert, key) = (dir.join("cert.pem"), dir.join("key.pem"));
        std::fs::write(&cert, "not a certificate").unwrap();
        std::fs::write(
            &key,
            "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n",
        )
        .unwrap();
        let files = TlsFiles {
            cert_file: cert.clone(),
            key_file: dir.join("missing.pem"),
        };
        let error = files.load().unwrap_err();
        assert!(error.contains("holds no certificate"), "{error}");
        assert!(error.contains(&cert.display().to_string()), "{error}");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
