//! The tenant's OpenID configuration, fetched once and kept. See `docs/ENTRA.md`, "Issuer validation".

use serde::Deserialize;
use url::Url;
use uuid::Uuid;

use crate::authority::Authority;

/// The parts of the discovery document a relying party uses.
#[derive(Clone, Debug, Deserialize)]
pub struct ProviderMetadata {
    /// The issuer, or for `common`/`organizations` the `{tenantid}` template.
    pub issuer: String,
    /// Where the browser is sent to sign in.
    pub authorization_endpoint: Url,
    /// Where codes and refresh tokens are redeemed.
    pub token_endpoint: Url,
    /// The signing keys.
    pub jwks_uri: Url,
    /// Where the browser is sent to sign out of Entra.
    #[serde(default)]
    pub end_session_endpoint: Option<Url>,
}

impl ProviderMetadata {
    /// The exact issuer a token from tenant `tid` must carry.
    pub fn issuer_for(&self, tid: Uuid) -> String {
        self.issuer.replace("{tenantid}", &tid.to_string())
    }
}

/// Why the discovery document could not be had.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum DiscoveryError {
    /// No answer (network, DNS, TLS, timeout).
    #[error("cannot reach {url}: {source}")]
    Unreachable {
        /// The discovery URL.
        url: String,
        /// The transport error.
        #[source]
        source: reqwest::Error,
    },
    /// An answer, but not a discovery document.
    #[error("{url} answered {status}, not an OpenID configuration")]
    BadAnswer {
        /// The discovery URL.
        url: String,
        /// The HTTP status.
        status: u16,
    },
}

/// Fetches the discovery document of `authority`.
pub(crate) async fn fetch(http: &reqwest::Client, authority: &Authority) -> Result<ProviderMetadata, DiscoveryError> {
    let url = authority.discovery_url();
    let unreachable = |source| DiscoveryError::Unreachable { url: url.clone(), source };
    let response = http.get(&url).send().await.map_err(unreachable)?;
    let status = response.status();
    if !status.is_success() {
        return Err(DiscoveryError::BadAnswer { url, status: status.as_u16() });
    }
    response
        .json::<ProviderMetadata>()
        .await
        .map_err(|_| DiscoveryError::BadAnswer { url: url.clone(), status: status.as_u16() })
}
