//! The certificate the proxy presents to an upstream that asks for one (mutual TLS), read again
//! when its files change: certificates for mutual TLS are often short-lived and renewed in place
//! (cert-manager, a service mesh, App Service's Key Vault certificates), and a proxy that kept
//! presenting the expired one would be refused by the upstream until restarted.

use std::sync::Arc;

use rustls::SignatureScheme;
use rustls::client::ResolvesClientCert;
use rustls::sign::CertifiedKey;

use crate::config::{ClientCertificateFiles, FilesFingerprint, SettingProblem, UpstreamClientCertificate};
use crate::proxy::renewed::{RenewableFiles, Renewed};

/// Presents the latest certificate its files held (see [`Renewed`]).
#[derive(Debug)]
pub(crate) struct RenewableClientCertificate(Renewed<ClientCertificateFiles>);

impl RenewableClientCertificate {
    pub(crate) fn new(certificate: &UpstreamClientCertificate) -> Self {
        Self(Renewed::new(certificate.files.clone(), certificate.loaded.clone(), certificate.loaded_from))
    }
}

impl ResolvesClientCert for RenewableClientCertificate {
    fn resolve(&self, _root_hints: &[&[u8]], _schemes: &[SignatureScheme]) -> Option<Arc<CertifiedKey>> {
        Some(self.0.current())
    }

    fn has_certs(&self) -> bool {
        true
    }
}

impl RenewableFiles for ClientCertificateFiles {
    type Made = Arc<CertifiedKey>;
    const WHAT: &'static str = "upstream client certificate";

    fn path(&self) -> &str {
        ClientCertificateFiles::path(self)
    }

    fn fingerprint(&self) -> FilesFingerprint {
        ClientCertificateFiles::fingerprint(self)
    }

    fn make(&self) -> Result<Self::Made, SettingProblem> {
        self.load()
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
        renewable.0.let_a_second_pass();
        assert_eq!(presented(&renewable), first, "a certificate without its key is not presented");
        // Both there.
        std::fs::copy(&key_only, &key_file).unwrap();
        renewable.0.let_a_second_pass();
        assert_eq!(presented(&renewable), second);
        // A key file gone: the certificate before stays.
        std::fs::remove_file(&key_file).unwrap();
        renewable.0.let_a_second_pass();
        assert_eq!(presented(&renewable), second, "nothing readable: the one before stays");
    }
}
