//! TLS to an `https://` upstream: the CAs trusted to sign its certificate (`UPSTREAM_CA_FILE`)
//! and the certificate the proxy presents when it asks for one (mutual TLS:
//! `UPSTREAM_CLIENT_CERTIFICATE_PATH`, `_KEY_PATH`, `_PASSWORD`). Both are read and checked at
//! start-up, so a wrong file stops it naming the setting rather than failing every request, and
//! read again by the proxy when they change (`proxy/renewed.rs`).

use std::sync::Arc;
use std::time::SystemTime;

use rustls::pki_types::pem::{self, PemObject};
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::sign::CertifiedKey;
use secrecy::{ExposeSecret, SecretString};
use url::Url;

use crate::config::problems::Problems;
use crate::config::settings::{Settings, set};

const CA_FILE: &str = "UPSTREAM_CA_FILE";
const CLIENT_CERTIFICATE: &str = "UPSTREAM_CLIENT_CERTIFICATE_PATH";
const CLIENT_KEY: &str = "UPSTREAM_CLIENT_CERTIFICATE_KEY_PATH";

/// Refuses `name` for an `http://` upstream: it would be a setting that does nothing.
fn https_only(name: &'static str, upstream: Option<&Url>, problems: &mut Problems) -> bool {
    if upstream.is_some_and(|upstream| upstream.scheme() != "https") {
        problems.add(name, "is only for an https:// UPSTREAM_URL; unset it, or use https.");
        return false;
    }
    true
}

/// `UPSTREAM_CA_FILE`: the certificates of a PEM file, read once here so that a wrong file stops
/// start-up.
pub(crate) fn upstream_roots(
    settings: &Settings,
    upstream: Option<&Url>,
    problems: &mut Problems,
) -> Option<UpstreamRoots> {
    let path = set(&settings.upstream_ca_file)?;
    if !https_only(CA_FILE, upstream, problems) {
        return None;
    }
    let file = CaFile { path: path.to_owned() };
    let loaded_from = file.fingerprint();
    match file.load() {
        Ok(loaded) => Some(UpstreamRoots { file, loaded, loaded_from }),
        Err((name, problem)) => {
            problems.add(name, problem);
            None
        }
    }
}

/// Where the CAs trusted to sign an `https://` upstream's certificate are read from
/// (`UPSTREAM_CA_FILE`, PEM), at start-up and again when the file changes (see
/// `proxy/renewed.rs`): a private CA's bundle is renewed in place too (cert-manager's
/// `ca.crt`, a mounted ConfigMap), the new CA added before the upstream's certificate moves to it.
#[derive(Clone, Debug)]
pub struct CaFile {
    path: String,
}

impl CaFile {
    /// The file (for logs).
    pub fn path(&self) -> &str {
        &self.path
    }

    /// The file's modification time and size now (`None` if it cannot be read).
    pub fn fingerprint(&self) -> FilesFingerprint {
        [file_fingerprint(&self.path), None]
    }

    /// The certificates the file holds now, at least one.
    pub fn load(&self) -> Result<Vec<CertificateDer<'static>>, SettingProblem> {
        let path = self.path.as_str();
        let certificates: Result<Vec<_>, _> =
            CertificateDer::pem_file_iter(path).and_then(|certificates| certificates.collect());
        match certificates {
            Ok(certificates) if !certificates.is_empty() => Ok(certificates),
            Ok(_) => Err((CA_FILE, format!("{path} holds no PEM certificate (-----BEGIN CERTIFICATE-----)."))),
            Err(error) => Err((CA_FILE, format!("cannot read certificates from {path}: {error}."))),
        }
    }
}

/// The CAs trusted for the upstream as read at start-up, and from where.
#[derive(Clone, Debug)]
pub struct UpstreamRoots {
    /// Where they are read again from once renewed.
    pub file: CaFile,
    /// What the file held at start-up.
    pub loaded: Vec<CertificateDer<'static>>,
    /// The file as it was just before it was read.
    pub loaded_from: FilesFingerprint,
}

/// Where the certificate (with its chain) and private key the proxy presents to an upstream that
/// asks for one are read from, at start-up and again when the files change (see
/// `proxy/client_certificate.rs`): a PKCS#12 file (App Service writes those it loads to
/// `/var/ssl/private/<thumbprint>.p12`, without a password), or PEM with the certificates and the
/// key, or the key in a file of its own (Kubernetes' `tls.crt` and `tls.key`). RSA, ECDSA or
/// Ed25519; the key must be the first certificate's.
#[derive(Clone, Debug)]
pub struct ClientCertificateFiles {
    path: String,
    key_path: Option<String>,
    password: SecretString,
}

/// The files' modification times and sizes: a change says they may hold a renewed certificate.
pub type FilesFingerprint = [Option<(SystemTime, u64)>; 2];

/// A file's modification time and size now (`None` if it cannot be read).
fn file_fingerprint(path: &str) -> Option<(SystemTime, u64)> {
    std::fs::metadata(path).ok().and_then(|meta| Some((meta.modified().ok()?, meta.len())))
}

/// The proxy's client certificate as read at start-up, and from where.
#[derive(Clone, Debug)]
pub struct UpstreamClientCertificate {
    /// Where it is read again from once renewed.
    pub files: ClientCertificateFiles,
    /// What the files held at start-up.
    pub loaded: Arc<CertifiedKey>,
    /// The files as they were just before they were read.
    pub loaded_from: FilesFingerprint,
}

impl ClientCertificateFiles {
    /// The certificate file (for logs).
    pub fn path(&self) -> &str {
        &self.path
    }

    /// The files' modification times and sizes now (`None` for one that cannot be read).
    pub fn fingerprint(&self) -> FilesFingerprint {
        [file_fingerprint(&self.path), self.key_path.as_deref().and_then(file_fingerprint)]
    }

    /// The certificate and key the files hold now.
    pub fn load(&self) -> Result<Arc<CertifiedKey>, SettingProblem> {
        let path = self.path.as_str();
        let read = |name: &'static str, path: &str| {
            std::fs::read(path).map_err(|error| (name, format!("cannot read {path}: {error}.")))
        };
        let bytes = read(CLIENT_CERTIFICATE, path)?;
        let (chain, key) = match (is_pem(&bytes), &self.key_path) {
            (true, Some(key_path)) => from_pem(path, &bytes, Some((key_path, &read(CLIENT_KEY, key_path)?)))?,
            (true, None) => from_pem(path, &bytes, None)?,
            (false, Some(_)) => {
                let problem = format!("is for a PEM {CLIENT_CERTIFICATE}; {path} is PKCS#12, which holds its key.");
                return Err((CLIENT_KEY, problem));
            }
            (false, None) => from_pkcs12(path, &bytes, self.password.expose_secret())?,
        };
        let provider = rustls::crypto::ring::default_provider();
        match CertifiedKey::from_der(chain, key, &provider) {
            Ok(certified) => Ok(Arc::new(certified)),
            Err(rustls::Error::InconsistentKeys(_)) => {
                let key = self.key_path.as_deref().unwrap_or(path);
                Err((
                    CLIENT_CERTIFICATE,
                    format!("the private key in {key} is not the key of the certificate in {path}."),
                ))
            }
            Err(error) => {
                Err((CLIENT_CERTIFICATE, format!("cannot use the private key (RSA, ECDSA or Ed25519): {error}.")))
            }
        }
    }
}

/// `UPSTREAM_CLIENT_CERTIFICATE_PATH` (with `_KEY_PATH`, `_PASSWORD`), read once here so that a
/// wrong file stops start-up.
pub(crate) fn upstream_client_certificate(
    settings: &Settings,
    upstream: Option<&Url>,
    problems: &mut Problems,
) -> Option<UpstreamClientCertificate> {
    let key_path = set(&settings.upstream_client_certificate_key_path);
    let Some(path) = set(&settings.upstream_client_certificate_path) else {
        if key_path.is_some() {
            let problem = format!("is the key of {CLIENT_CERTIFICATE}, which is not set; set both, or neither.");
            problems.add(CLIENT_KEY, problem);
        }
        return None;
    };
    if !https_only(CLIENT_CERTIFICATE, upstream, problems) {
        return None;
    }
    let password = settings.upstream_client_certificate_password.as_deref().unwrap_or_default();
    let password = problems.resolved("UPSTREAM_CLIENT_CERTIFICATE_PASSWORD", password)?;
    let files = ClientCertificateFiles {
        path: path.to_owned(),
        key_path: key_path.map(str::to_owned),
        password: SecretString::from(password),
    };
    let loaded_from = files.fingerprint();
    match files.load() {
        Ok(loaded) => Some(UpstreamClientCertificate { files, loaded, loaded_from }),
        Err((name, problem)) => {
            problems.add(name, problem);
            None
        }
    }
}

fn is_pem(bytes: &[u8]) -> bool {
    bytes.windows(10).any(|window| window == b"-----BEGIN")
}

/// A setting to fix, and what is wrong with it.
pub type SettingProblem = (&'static str, String);

/// The certificates of `bytes` (read from `path`) and the key of `key_file`, or of `bytes` when
/// there is no key file.
fn from_pem(
    path: &str,
    bytes: &[u8],
    key_file: Option<(&str, &[u8])>,
) -> Result<(Vec<CertificateDer<'static>>, PrivateKeyDer<'static>), SettingProblem> {
    let chain = CertificateDer::pem_slice_iter(bytes)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|error| (CLIENT_CERTIFICATE, format!("cannot read certificates from {path}: {error}.")))?;
    if chain.is_empty() {
        return Err((CLIENT_CERTIFICATE, format!("{path} holds no PEM certificate (-----BEGIN CERTIFICATE-----).")));
    }
    let (key_name, key_path, key_bytes) = match key_file {
        Some((key_path, key_bytes)) => (CLIENT_KEY, key_path, key_bytes),
        None => (CLIENT_CERTIFICATE, path, bytes),
    };
    let key = PrivateKeyDer::from_pem_slice(key_bytes).map_err(|error| match (error, key_file) {
        (pem::Error::NoItemsFound, None) => (
            CLIENT_CERTIFICATE,
            format!("{path} holds no private key (-----BEGIN PRIVATE KEY-----): add it, or name the file that holds it in {CLIENT_KEY}."),
        ),
        (pem::Error::NoItemsFound, Some(_)) => {
            (CLIENT_KEY, format!("{key_path} holds no private key (-----BEGIN PRIVATE KEY-----)."))
        }
        (error, _) => (key_name, format!("cannot read a private key from {key_path}: {error}.")),
    })?;
    Ok((chain, key))
}

/// The key and its certificates of a PKCS#12 (`.pfx`, `.p12`) file.
fn from_pkcs12(
    path: &str,
    bytes: &[u8],
    password: &str,
) -> Result<(Vec<CertificateDer<'static>>, PrivateKeyDer<'static>), SettingProblem> {
    let store = p12_keystore::KeyStore::from_pkcs12(bytes, password, p12_keystore::Pkcs12ImportPolicy::Relaxed)
        .map_err(|error| {
            let problem = format!(
                "{path} is neither PEM nor a PKCS#12 file it can open (wrong UPSTREAM_CLIENT_CERTIFICATE_PASSWORD?): {error}."
            );
            (CLIENT_CERTIFICATE, problem)
        })?;
    let Some((_, chain)) = store.private_key_chain().filter(|(_, chain)| !chain.certs().is_empty()) else {
        return Err((CLIENT_CERTIFICATE, format!("{path} holds no private key with its certificate.")));
    };
    let certificates = chain.certs().iter().map(|certificate| CertificateDer::from(certificate.as_der().to_vec()));
    Ok((certificates.collect(), PrivateKeyDer::Pkcs8(chain.key().as_der().to_vec().into())))
}
