//! How the app proves it is itself at the token endpoint: a client secret, or, with no secret to
//! leak or expire, a client assertion from a certificate, a managed identity (App Service) or a
//! workload identity token file (AKS). A fresh assertion goes with every token request; a managed
//! identity's token is reused only while it has time left.

use std::path::PathBuf;
use std::sync::Mutex;

use secrecy::{ExposeSecret, SecretString};
use url::Url;

mod certificate;
pub(crate) mod error;
mod managed_identity;

pub use certificate::Certificate;
pub use error::CredentialError;
pub use managed_identity::{ManagedIdentity, TOKEN_EXCHANGE_AUDIENCE};

use crate::clock::unix_now;

/// How the app proves it is itself at the token endpoint.
#[derive(Clone)]
#[non_exhaustive]
pub enum ClientCredential {
    /// A client secret from the app registration's "Certificates & secrets".
    Secret(SecretString),
    /// A certificate whose public half is uploaded to the app registration.
    Certificate(std::sync::Arc<Certificate>),
    /// A user-assigned managed identity, trusted by the app registration as a federated
    /// credential (issuer: the tenant, subject: the identity's object id).
    ManagedIdentity(ManagedIdentity),
    /// A workload identity token file (`AZURE_FEDERATED_TOKEN_FILE` on AKS), read afresh for
    /// every request because the platform rotates it.
    WorkloadIdentity(PathBuf),
}

impl From<SecretString> for ClientCredential {
    fn from(secret: SecretString) -> Self {
        ClientCredential::Secret(secret)
    }
}

impl From<Certificate> for ClientCredential {
    fn from(certificate: Certificate) -> Self {
        ClientCredential::Certificate(std::sync::Arc::new(certificate))
    }
}

impl From<ManagedIdentity> for ClientCredential {
    fn from(identity: ManagedIdentity) -> Self {
        ClientCredential::ManagedIdentity(identity)
    }
}

impl std::fmt::Debug for ClientCredential {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ClientCredential::Secret(_) => f.write_str("ClientCredential::Secret([REDACTED])"),
            ClientCredential::Certificate(certificate) => write!(f, "ClientCredential::Certificate({certificate:?})"),
            ClientCredential::ManagedIdentity(identity) => write!(f, "ClientCredential::ManagedIdentity({identity:?})"),
            ClientCredential::WorkloadIdentity(path) => {
                write!(f, "ClientCredential::WorkloadIdentity({})", path.display())
            }
        }
    }
}

impl ClientCredential {
    /// A short name for logs and pages: `secret`, `certificate`, `managed_identity`,
    /// `workload_identity`.
    pub fn kind(&self) -> &'static str {
        match self {
            ClientCredential::Secret(_) => "secret",
            ClientCredential::Certificate(_) => "certificate",
            ClientCredential::ManagedIdentity(_) => "managed_identity",
            ClientCredential::WorkloadIdentity(_) => "workload_identity",
        }
    }
}

/// What goes into a token request to authenticate the client.
pub(crate) enum ClientAuth {
    Secret(SecretString),
    Assertion(SecretString),
}

/// A managed identity token is reused until this long before it expires, or half its lifetime
/// when that is shorter.
const REUSE_MARGIN_SECS: u64 = 5 * 60;

/// The credential and what it may reuse.
pub(crate) struct Credentials {
    credential: ClientCredential,
    /// The managed identity's token, its expiry, and the margin before it to stop using it.
    identity_token: Mutex<Option<(SecretString, u64, u64)>>,
}

impl Credentials {
    pub(crate) fn new(credential: ClientCredential) -> Self {
        Self { credential, identity_token: Mutex::new(None) }
    }

    /// The client authentication for one token request at `token_endpoint`.
    pub(crate) async fn client_auth(
        &self,
        http: &reqwest::Client,
        client_id: &str,
        token_endpoint: &Url,
    ) -> Result<ClientAuth, CredentialError> {
        match &self.credential {
            ClientCredential::Secret(secret) => Ok(ClientAuth::Secret(secret.clone())),
            ClientCredential::Certificate(certificate) => {
                certificate.assertion(client_id, token_endpoint).map(ClientAuth::Assertion)
            }
            ClientCredential::ManagedIdentity(identity) => {
                if let Some(token) = self.reusable_identity_token() {
                    return Ok(ClientAuth::Assertion(token));
                }
                let (token, expires_on) = identity.token(http).await?;
                let lifetime = expires_on.saturating_sub(unix_now());
                let margin = REUSE_MARGIN_SECS.min(lifetime / 2);
                *self.identity_token.lock().unwrap_or_else(std::sync::PoisonError::into_inner) =
                    Some((token.clone(), expires_on, margin));
                Ok(ClientAuth::Assertion(token))
            }
            ClientCredential::WorkloadIdentity(path) => std::fs::read_to_string(path)
                .map(|token| ClientAuth::Assertion(SecretString::from(token.trim().to_owned())))
                .map_err(|source| CredentialError::TokenFile { path: path.display().to_string(), source }),
        }
    }

    fn reusable_identity_token(&self) -> Option<SecretString> {
        let cached = self.identity_token.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        let (token, expires_on, margin) = cached.as_ref()?;
        (unix_now() + margin < *expires_on).then(|| token.clone())
    }

    /// Forgets a reused assertion Entra refused (expired early, clock skew): the next request
    /// fetches a new one.
    pub(crate) fn forget_reused(&self) {
        *self.identity_token.lock().unwrap_or_else(std::sync::PoisonError::into_inner) = None;
    }

    /// Whether the credential can be had now (for `/readyz`); the reason when not.
    pub(crate) async fn check(&self, http: &reqwest::Client, client_id: &str) -> Result<(), CredentialError> {
        self.client_auth(http, client_id, &certificate::probe_audience()).await.map(|_| ())
    }

    pub(crate) fn credential(&self) -> &ClientCredential {
        &self.credential
    }
}

impl ClientAuth {
    /// The form fields that carry it.
    pub(crate) fn form_fields(&self) -> Vec<(&'static str, &str)> {
        match self {
            ClientAuth::Secret(secret) => vec![("client_secret", secret.expose_secret())],
            ClientAuth::Assertion(assertion) => vec![
                ("client_assertion_type", "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"),
                ("client_assertion", assertion.expose_secret()),
            ],
        }
    }
}
