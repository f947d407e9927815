//! A certificate credential: the app signs a short-lived client assertion (RFC 7523) with the
//! certificate's private key, and Entra checks it against the certificate uploaded to the app
//! registration, found by the thumbprint in the assertion's header. See `docs/ENTRA.md`, "Client
//! authentication".

use std::path::Path;

use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use secrecy::{ExposeSecret, SecretString};
use serde::Serialize;
use sha1::Sha1;
use sha2::{Digest, Sha256};
use url::Url;

use crate::clock::unix_now;
use crate::credential::error::CredentialError;

/// A client assertion is valid this long (Microsoft: 5 to 10 minutes).
const ASSERTION_LIFETIME_SECS: u64 = 10 * 60;

/// A certificate and its private key. The key never leaves the process; `Debug` shows the
/// thumbprint only.
pub struct Certificate {
    key: EncodingKey,
    /// base64url SHA-1 of the certificate's DER (`x5t`).
    x5t: String,
    /// base64url SHA-256 of the certificate's DER (`x5t#S256`).
    x5t_s256: String,
    /// Upper-case hex SHA-1, as the portal and App Service show it.
    thumbprint: String,
}

impl std::fmt::Debug for Certificate {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Certificate").field("thumbprint", &self.thumbprint).finish_non_exhaustive()
    }
}

#[derive(Serialize)]
struct AssertionClaims<'a> {
    aud: &'a str,
    iss: &'a str,
    sub: &'a str,
    jti: String,
    iat: u64,
    nbf: u64,
    exp: u64,
}

impl Certificate {
    /// From PEM text holding the certificate (`CERTIFICATE`) and its RSA private key (`PRIVATE
    /// KEY` or `RSA PRIVATE KEY`); both may be in one text.
    pub fn from_pem(certificate_pem: &str, key_pem: &str) -> Result<Self, CredentialError> {
        let der = pem_block(certificate_pem, "CERTIFICATE")
            .ok_or_else(|| CredentialError::Certificate("no CERTIFICATE block in the PEM".to_owned()))?;
        let key_block = ["PRIVATE KEY", "RSA PRIVATE KEY"]
            .iter()
            .find_map(|label| pem_text(key_pem, label))
            .ok_or_else(|| CredentialError::Certificate("no PRIVATE KEY block in the PEM".to_owned()))?;
        let key = EncodingKey::from_rsa_pem(key_block.as_bytes())
            .map_err(|err| CredentialError::Certificate(format!("the private key is not an RSA PEM key: {err}")))?;
        Self::new(key, &der)
    }

    /// From a PKCS#12 (`.pfx`, `.p12`) file's bytes and its password (empty for App Service's).
    pub fn from_pkcs12(der: &[u8], password: &SecretString) -> Result<Self, CredentialError> {
        let store = p12_keystore::KeyStore::from_pkcs12(
            der,
            password.expose_secret(),
            p12_keystore::Pkcs12ImportPolicy::Relaxed,
        )
        .map_err(|err| {
            CredentialError::Certificate(format!("cannot open the PKCS#12 file (wrong password?): {err}"))
        })?;
        let (_, chain) = store
            .private_key_chain()
            .ok_or_else(|| CredentialError::Certificate("the PKCS#12 file holds no private key".to_owned()))?;
        let certificate = chain.certs().first().ok_or_else(|| {
            CredentialError::Certificate("the PKCS#12 file holds no certificate for its key".to_owned())
        })?;
        let key_pem = format!(
            "-----BEGIN PRIVATE KEY-----\n{}\n-----END PRIVATE KEY-----\n",
            STANDARD.encode(chain.key().as_der())
        );
        let key = EncodingKey::from_rsa_pem(key_pem.as_bytes())
            .map_err(|err| CredentialError::Certificate(format!("the PKCS#12 key is not an RSA key: {err}")))?;
        Self::new(key, certificate.as_der())
    }

    /// From a file: PKCS#12 when it is not text (password as given), else PEM holding both the
    /// certificate and the key, or the certificate only with the key in `key_path`.
    pub fn from_file(path: &Path, key_path: Option<&Path>, password: &SecretString) -> Result<Self, CredentialError> {
        let read = |path: &Path| {
            std::fs::read(path)
                .map_err(|err| CredentialError::Certificate(format!("cannot read {}: {err}", path.display())))
        };
        let bytes = read(path)?;
        let Ok(text) = String::from_utf8(bytes.clone()) else {
            return Self::from_pkcs12(&bytes, password);
        };
        if !text.contains("-----BEGIN") {
            return Self::from_pkcs12(&bytes, password);
        }
        let key = match key_path {
            Some(key_path) => String::from_utf8(read(key_path)?)
                .map_err(|_| CredentialError::Certificate(format!("{} is not PEM text", key_path.display())))?,
            None => text.clone(),
        };
        Self::from_pem(&text, &key)
    }

    /// The certificate for `key`; it signs once here, so an unusable key fails at start-up
    /// rather than at the first sign-in.
    fn new(key: EncodingKey, der: &[u8]) -> Result<Self, CredentialError> {
        let sha1 = Sha1::digest(der);
        let certificate = Self {
            key,
            x5t: URL_SAFE_NO_PAD.encode(sha1),
            x5t_s256: URL_SAFE_NO_PAD.encode(Sha256::digest(der)),
            thumbprint: sha1.iter().map(|b| format!("{b:02X}")).collect(),
        };
        certificate.assertion("probe", &probe_audience())?;
        Ok(certificate)
    }

    /// The SHA-1 thumbprint in upper-case hex (as the Azure portal shows it).
    pub fn thumbprint(&self) -> &str {
        &self.thumbprint
    }

    /// A fresh assertion for `client_id` at `token_endpoint` (its audience): PS256 is what
    /// Microsoft recommends; RS256 is what every Entra cloud accepts and what we send.
    pub(crate) fn assertion(&self, client_id: &str, token_endpoint: &Url) -> Result<SecretString, CredentialError> {
        let mut header = Header::new(Algorithm::RS256);
        header.x5t = Some(self.x5t.clone());
        header.x5t_s256 = Some(self.x5t_s256.clone());
        let now = unix_now();
        let claims = AssertionClaims {
            aud: token_endpoint.as_str(),
            iss: client_id,
            sub: client_id,
            jti: uuid::Uuid::new_v4().to_string(),
            iat: now,
            nbf: now,
            exp: now + ASSERTION_LIFETIME_SECS,
        };
        jsonwebtoken::encode(&header, &claims, &self.key)
            .map(SecretString::from)
            .map_err(|err| CredentialError::Certificate(format!("cannot sign the client assertion: {err}")))
    }
}

/// An audience for assertions made only to see that a credential works (never sent).
pub(crate) fn probe_audience() -> Url {
    Url::parse("https://login.invalid/token").unwrap_or_else(|_| unreachable!("a valid constant"))
}

/// The first PEM block labelled `label`, as PEM text.
fn pem_text(pem: &str, label: &str) -> Option<String> {
    let begin = format!("-----BEGIN {label}-----");
    let end = format!("-----END {label}-----");
    let start = pem.find(&begin)?;
    let stop = pem[start..].find(&end)? + start + end.len();
    Some(format!("{}\n", &pem[start..stop]))
}

/// The DER of the first PEM block labelled `label`.
fn pem_block(pem: &str, label: &str) -> Option<Vec<u8>> {
    let begin = format!("-----BEGIN {label}-----");
    let end = format!("-----END {label}-----");
    let start = pem.find(&begin)? + begin.len();
    let stop = pem[start..].find(&end)? + start;
    let body: String = pem[start..stop].chars().filter(|c| !c.is_whitespace()).collect();
    STANDARD.decode(body).ok()
}
