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
