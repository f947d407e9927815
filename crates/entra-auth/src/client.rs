//! The relying party: provider metadata (loaded once, retried with backoff), the client's
//! authentication at the token endpoint, and the checks of tokens presented to the app. Its other
//! methods are in `client/sign_in.rs` (the two halves of the auth code + PKCE flow, the URLs of
//! sign-out) and `client/token_requests.rs` (refreshes, other resources' tokens, the app's own and
//! on-behalf-of tokens).

mod sign_in;
mod token_requests;

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{Mutex, RwLock};

use crate::app_tokens::{AppTokenError, AppTokens};
use crate::bearer::{self, AccessTokenClaims, BearerError, BearerPolicy};
use crate::config::EntraConfig;
use crate::credential::Credentials;
use crate::credential::error::CredentialError;
use crate::discovery::{self, DiscoveryError, ProviderMetadata};
use crate::error::SignInError;
use crate::graph::{GraphClient, GraphError, Profile};
use crate::id_token::IdTokenClaims;
use crate::jwks::JwksCache;
use crate::memberships::{Memberships, claims_request};
use crate::on_behalf_of::OnBehalfOfTokens;
use crate::refresh::RefreshCoordinator;
use crate::token_endpoint::{TokenEndpoint, TokenError, TokenResponse};
use crate::tokens::TokenSet;

/// Scopes every sign-in asks for on top of the configured ones.
pub const OIDC_SCOPES: [&str; 3] = ["openid", "profile", "offline_access"];

/// A completed sign-in.
#[non_exhaustive]
pub struct SignedIn {
    /// The verified identity.
    pub claims: IdTokenClaims,
    /// Roles, groups (overage resolved through Graph) and directory roles.
    pub memberships: Memberships,
    /// The Graph profile, when [`EntraConfig::profile_at_sign_in`] asked for it.
    pub profile: Option<Profile>,
    /// Tokens to keep server-side.
    pub tokens: TokenSet,
}

/// Metadata and keys of the tenant, once loaded.
pub(crate) struct Provider {
    /// The discovery document.
    pub(crate) metadata: ProviderMetadata,
    /// Its signing keys.
    pub(crate) jwks: JwksCache,
}

/// The relying party. One per app; cheap to share behind an `Arc`.
pub struct EntraClient {
    config: EntraConfig,
    credentials: Credentials,
    http: reqwest::Client,
    graph: GraphClient,
    provider: RwLock<Option<Arc<Provider>>>,
    loading: Mutex<()>,
    refreshes: RefreshCoordinator,
    /// The `claims` of token requests: the declared client capabilities, if any.
    capabilities_claims: Option<String>,
    app_tokens: AppTokens,
    on_behalf_of_tokens: OnBehalfOfTokens,
}

impl EntraClient {
    /// Builds the client; no network yet.
    pub fn new(config: EntraConfig) -> Result<Self, reqwest::Error> {
        let http = crate::http::client(config.http_timeout)?;
        let graph = GraphClient::new(http.clone(), config.graph_endpoint.clone());
        Ok(Self {
            credentials: Credentials::new(config.credential.clone()),
            capabilities_claims: claims_request(None, &config.client_capabilities),
            config,
            http,
            graph,
            provider: RwLock::new(None),
            loading: Mutex::new(()),
            refreshes: RefreshCoordinator::default(),
            app_tokens: AppTokens::default(),
            on_behalf_of_tokens: OnBehalfOfTokens::default(),
        })
    }

    /// The configuration.
    pub fn config(&self) -> &EntraConfig {
        &self.config
    }

    /// The Graph client.
    pub fn graph(&self) -> &GraphClient {
        &self.graph
    }

    /// The HTTP client every outbound call goes through (timeouts, no redirects).
    pub(crate) fn http(&self) -> &reqwest::Client {
        &self.http
    }

    /// The provider metadata, fetched on first use and kept.
    pub(crate) async fn provider(&self) -> Result<Arc<Provider>, DiscoveryError> {
        if let Some(provider) = self.provider.read().await.as_ref() {
            return Ok(provider.clone());
        }
        let _one_load_at_a_time = self.loading.lock().await;
        if let Some(provider) = self.provider.read().await.as_ref() {
            return Ok(provider.clone());
        }
        let metadata = discovery::fetch(&self.http, &self.config.authority).await?;
        let jwks = JwksCache::with_intervals(
            self.http.clone(),
            metadata.jwks_uri.clone(),
            crate::jwks::REFRESH_EVERY,
            self.config.jwks_refetch_interval,
        );
        let provider = Arc::new(Provider { metadata, jwks });
        *self.provider.write().await = Some(provider.clone());
        Ok(provider)
    }

    /// Whether the tenant's metadata is loaded (for `/readyz`; why not is in the logs).
    pub async fn is_ready(&self) -> bool {
        self.provider.read().await.is_some()
    }

    /// Loads the metadata, retrying with exponential backoff (1 s doubling to 60 s) until it works.
    pub async fn load_provider_with_backoff(self: Arc<Self>) {
        let mut delay = Duration::from_secs(1);
        loop {
            match self.provider().await {
                Ok(_) => {
                    tracing::info!(authority = %self.config.authority.url(), "tenant metadata loaded");
                    return;
                }
                Err(err) => {
                    tracing::warn!(error = %err, retry_in_s = delay.as_secs(), "cannot load tenant metadata yet");
                    tokio::time::sleep(delay).await;
                    delay = (delay * 2).min(Duration::from_secs(60));
                }
            }
        }
    }

    /// The `scope` parameter: OIDC scopes plus the configured ones.
    pub fn scope(&self) -> String {
        self.scope_with(&self.config.scopes)
    }

    /// OIDC scopes plus `scopes`.
    fn scope_with(&self, scopes: &[String]) -> String {
        let mut all: Vec<&str> = OIDC_SCOPES.to_vec();
        all.extend(scopes.iter().map(String::as_str));
        all.join(" ")
    }

    /// Checks an access token another application presented to this app as
    /// `Authorization: Bearer` (see [`BearerPolicy`]) and says who calls: the signature against
    /// the tenant's keys, issuer, tenant (and `allowed_tenants`), audience, lifetime, caller.
    pub async fn verify_bearer(&self, token: &str, policy: &BearerPolicy) -> Result<AccessTokenClaims, BearerError> {
        let provider = self.provider().await.map_err(|err| BearerError::Unavailable(err.to_string()))?;
        bearer::verify(token, &provider.metadata, &provider.jwks, policy, &self.config).await
    }

    /// Runs one token request with a fresh client authentication. A reused managed identity
    /// token Entra calls expired (AADSTS700024) is dropped and the request made once more with a
    /// new one.
    async fn with_client_auth<'a, F, Fut>(
        &'a self,
        provider: &'a Provider,
        request: F,
    ) -> Result<TokenResponse, SignInError>
    where
        F: Fn(TokenEndpoint<'a>) -> Fut,
        Fut: std::future::Future<Output = Result<TokenResponse, TokenError>>,
    {
        let endpoint = |auth| TokenEndpoint {
            http: &self.http,
            url: &provider.metadata.token_endpoint,
            client_id: &self.config.client_id,
            claims: self.capabilities_claims.as_deref(),
            auth,
        };
        let auth =
            self.credentials.client_auth(&self.http, &self.config.client_id, &provider.metadata.token_endpoint).await?;
        match request(endpoint(auth)).await {
            Err(TokenError::Rejected(error)) if error.code() == Some(700024) => {
                self.credentials.forget_reused();
                let auth = self
                    .credentials
                    .client_auth(&self.http, &self.config.client_id, &provider.metadata.token_endpoint)
                    .await?;
                Ok(request(endpoint(auth)).await?)
            }
            other => Ok(other?),
        }
    }

    /// Whether the client credential can be had now (for `/readyz`: a managed identity endpoint
    /// that answers, a readable token file); why not otherwise.
    pub async fn check_credential(&self) -> Result<(), CredentialError> {
        self.credentials.check(&self.http, &self.config.client_id).await
    }

    /// Which kind of credential the client presents (`secret`, `certificate`, ...).
    pub fn credential_kind(&self) -> &'static str {
        self.credentials.credential().kind()
    }
}

/// Why a user's groups could not be had from Graph.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum UserGroupsError {
    /// No token of the app's own.
    #[error(transparent)]
    AppToken(#[from] AppTokenError),
    /// Graph refused (most often: the app lacks `GroupMember.Read.All`) or failed.
    #[error(transparent)]
    Graph(#[from] GraphError),
}
