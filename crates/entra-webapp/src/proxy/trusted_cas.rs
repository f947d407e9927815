//! The CAs trusted to sign an `https://` upstream's certificate when `UPSTREAM_CA_FILE` names
//! them, read again when the file changes (see `renewed.rs`): a private CA's bundle is renewed in
//! place (the new CA added before the upstream's certificate moves to it), and a proxy that kept
//! the bundle of its start-up would refuse the upstream's new certificate until restarted. Each
//! new connection's certificate is checked by webpki, as any other, against the file's latest
//! usable content.

use std::sync::Arc;

use rustls::DigitallySignedStruct;
use rustls::client::WebPkiServerVerifier;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};

use crate::config::{CaFile, FilesFingerprint, SettingProblem, UpstreamRoots};
use crate::proxy::renewed::{RenewableFiles, Renewed};

/// Checks the upstream's certificate against the latest CAs of `UPSTREAM_CA_FILE`.
#[derive(Debug)]
pub(crate) struct RenewableTrustedCas(Renewed<CaFile>);

impl RenewableTrustedCas {
    /// Trusting `roots` as read at start-up; fails if one of them cannot be a trust anchor.
    pub(crate) fn new(roots: &UpstreamRoots) -> Result<Self, rustls::Error> {
        Ok(Self(Renewed::new(roots.file.clone(), verifier(&roots.loaded)?, roots.loaded_from)))
    }
}

/// A webpki verifier trusting `roots` and nothing else.
fn verifier(roots: &[CertificateDer<'static>]) -> Result<Arc<WebPkiServerVerifier>, rustls::Error> {
    let mut store = rustls::RootCertStore::empty();
    for root in roots {
        store.add(root.clone())?;
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    WebPkiServerVerifier::builder_with_provider(Arc::new(store), provider)
        .build()
        .map_err(|error| rustls::Error::General(error.to_string()))
}

impl ServerCertVerifier for RenewableTrustedCas {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        self.0.current().verify_server_cert(end_entity, intermediates, server_name, ocsp_response, now)
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        certificate: &CertificateDer<'_>,
        signature: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.0.current().verify_tls12_signature(message, certificate, signature)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        certificate: &CertificateDer<'_>,
        signature: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.0.current().verify_tls13_signature(message, certificate, signature)
    }

    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        self.0.current().supported_verify_schemes()
    }
}

impl RenewableFiles for CaFile {
    type Made = Arc<WebPkiServerVerifier>;
    const WHAT: &'static str = "upstream CAs";

    fn path(&self) -> &str {
        CaFile::path(self)
    }

    fn fingerprint(&self) -> FilesFingerprint {
        CaFile::fingerprint(self)
    }

    fn make(&self) -> Result<Self::Made, SettingProblem> {
        verifier(&self.load()?).map_err(|error| {
            ("UPSTREAM_CA_FILE", format!("cannot trust the certificates of {}: {error}.", self.path()))
        })
    }
}
