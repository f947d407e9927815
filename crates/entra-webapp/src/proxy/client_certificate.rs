//! The certificate the proxy presents to an upstream that asks for one (mutual TLS), read again
//! when its files change: certificates for mutual TLS are often short-lived and renewed in place
//! (cert-manager, a service mesh, App Service's Key Vault certificates), and a proxy that kept
//! presenting the expired one would be refused by the upstream until restarted.

use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use rustls::SignatureScheme;
use rustls::client::ResolvesClientCert;
use rustls::sign::CertifiedKey;

use crate::config::{ClientCertificateFiles, FilesFingerprint, UpstreamClientCertificate};

/// The files are looked at no more often than this (on a new connection to the upstream).
const RECHECK: Duration = Duration::from_secs(1);

/// Presents the latest certificate its files held: on a new connection to the upstream, at most
/// once per [`RECHECK`], the files' modification times and sizes are compared with those last
/// read; when they changed, the files are read again. A renewed file that cannot be used (half
/// written, a key of another certificate) is logged once and the previous certificate kept.
#[derive(Debug)]
pub(crate) struct RenewableClientCertificate {
    files: ClientCertificateFiles,
    state: Mutex<State>,
}

#[derive(Debug)]
struct State {
    current: Arc<CertifiedKey>,
    /// The files as last read, whether what they held could be used or not.
    seen: FilesFingerprint,
    checked: Instant,
}

impl RenewableClientCertificate {
    pub(crate) fn new(certificate: &UpstreamClientCertificate) -> Self {
        let state =
            State { current: certificate.loaded.clone(), seen: certificate.loaded_from, checked: Instant::now() };
        Self { files: certificate.files.clone(), state: Mutex::new(state) }
    }

    /// The certificate to present now, read again first if its files changed. (A look at two
    /// files' metadata once a second at most, and rarely a read of a few kilobytes: done in place,
    /// on the thread opening the connection, rather than by a task of its own.)
    fn current(&self) -> Arc<CertifiedKey> {
        let mut state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        if state.checked.elapsed() >= RECHECK {
            state.checked = Instant::now();
            let now = self.files.fingerprint();
            if now != state.seen {
                state.seen = now;
                match self.files.load() {
                    Ok(renewed) => {
                        tracing::info!(
                            path = self.files.path(),
                            "upstream client certificate renewed: presenting the new one"
                        );
                        state.current = renewed;
                    }
                    Err((setting, problem)) => tracing::warn!(
                        setting,
                        problem,
                        "the changed upstream client certificate cannot be used: still presenting the previous one"
                    ),
                }
            }
        }
        state.current.clone()
    }
}

impl ResolvesClientCert for RenewableClientCertificate {
    fn resolve(&self, _root_hints: &[&[u8]], _schemes: &[SignatureScheme]) -> Option<Arc<CertifiedKey>> {
        Some(self.current())
    }

    fn has_certs(&self) -> bool {
        true
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use rcgen::{CertificateParams, DnType, KeyPair};

    use super::*;
    use crate::config::Settings;

    /// A self-signed certificate for `name` into `certificate_file`, its key into `key_file`;
    /// the certificate's DER.
    fn issue(name: &str, certificate_file: &Path, key_file: &Path) -> Vec<u8> {
        let key = KeyPair::generate().unwrap();
        let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
        params.distinguished_name.push(DnType::CommonName, name);
        let certificate = params.self_signed(&key).unwrap();
        std::fs::write(certificate_file, certificate.pem()).unwrap();
        std::fs::write(key_file, key.serialize_pem()).unwrap();
        certificate.der().to_vec()
    }

    fn presented(renewable: &RenewableClientCertificate) -> Vec<u8> {
        renewable.resolve(&[], &[]).unwrap().cert[0].to_vec()
    }

    /// As if the last look at the files were more than [`RECHECK`] ago.
    fn let_a_second_pass(renewable: &RenewableClientCertificate) {
        renewable.state.lock().unwrap().checked -= RECHECK;
    }

    #[test]
    fn a_certificate_and_key_renewed_one_file_at_a_time_are_presented_once_they_match() {
        let dir = tempfile::tempdir().unwrap();
        let (certificate_file, key_file) = (dir.path().join("tls.crt"), dir.path().join("tls.key"));
        let (key_only, certificate_only) = (dir.path().join("next.key"), dir.path().join("next.crt"));
        let first = issue("a", &certificate_file, &key_file);
        let settings = Settings {
            tenant_id: Some("7e6b1c4a-2f0d-4a8e-9c3b-5d1e8f2a6b90".into()),
            client_id: Some("3f1c9a2e-8b4d-4c6f-a1e7-0d5b2c8e9f41".into()),
            client_secret: Some("s3cr3t".into()),
            redirect_uri: Some("https://app.example/callback".into()),
            upstream_url: Some("https://app.internal.example".into()),
            upstream_client_certificate_path: Some(certificate_file.to_string_lossy().into_owned()),
            upstream_client_certificate_key_path: Some(key_file.to_string_lossy().into_owned()),
            ..Settings::default()
        };
        let certificate = settings.validate().unwrap().proxy.unwrap().upstream_client_certificate.unwrap();
        let renewable = RenewableClientCertificate::new(&certificate);
        assert_eq!(presented(&renewable), first);

        // Renewed, but looked at within the second: not yet.
        let second = issue("bb", &certificate_only, &key_only);
        std::fs::copy(&certificate_only, &certificate_file).unwrap();
        assert_eq!(presented(&renewable), first, "once a second at most");
        // The certificate is there, its key not yet: the one before stays.
        let_a_second_pass(&renewable);
        assert_eq!(presented(&renewable), first, "a certificate without its key is not presented");
        // Both there.
        std::fs::copy(&key_only, &key_file).unwrap();
        let_a_second_pass(&renewable);
        assert_eq!(presented(&renewable), second);
        // A key file gone: the certificate before stays.
        std::fs::remove_file(&key_file).unwrap();
        let_a_second_pass(&renewable);
        assert_eq!(presented(&renewable), second, "nothing readable: the one before stays");
    }
}
