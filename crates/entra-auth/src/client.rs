//! The relying party: configuration, provider metadata (loaded once, retried with backoff), and
//! the two halves of the auth code + PKCE flow.

use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Serialize};
use tokio::sync::{Mutex, RwLock};
use url::Url;

use crate::authority::Authority;
use crate::discovery::{self, DiscoveryError, ProviderMetadata};
use crate::error::SignInError;
use crate::graph::{GraphClient, Profile};
use crate::id_token::{self, Expectations, IdTokenClaims};
use crate::jwks::JwksCache;
use crate::refresh::RefreshFailure;
use crate::return_to::LocalPath;
use crate::secret::{pkce_challenge, random_token};
use crate::token::{TokenEndpoint, TokenResponse};

/// A pending sign-in lives this long (Entra's codes live about 10 minutes too).
pub const PENDING_SIGN_IN_LIFETIME: Duration = Duration::from_secs(10 * 60);
/// Access tokens are refreshed this long before they expire.
pub const REFRESH_AHEAD: Duration = Duration::from_secs(5 * 60);
/// Scopes every sign-in asks for on top of the configured ones.
pub const OIDC_SCOPES: [&str; 3] = ["openid", "profile", "offline_access"];

/// What the relying party needs to know.
pub struct EntraConfig {
    /// Login host + tenant.
    pub authority: Authority,
    /// Application (client) id.
    pub client_id: String,
    /// Client secret.
    pub client_secret: SecretString,
    /// The callback URL registered on the app registration.
    pub redirect_uri: Url,
    /// Resource scopes, e.g. `User.Read`.
    pub scopes: Vec<String>,
    /// Graph base URL.
    pub graph_endpoint: Url,
    /// Where Entra sends the browser after sign-out.
    pub post_logout_redirect_uri: Url,
    /// Clock skew allowed on ID tokens (MSAL uses 120 s).
    pub clock_leeway: Duration,
    /// How long a started sign-in may take ([`PENDING_SIGN_IN_LIFETIME`] unless testing).
    pub pending_sign_in_lifetime: Duration,
    /// At most one JWKS refetch for an unknown `kid` per this interval
    /// ([`crate::jwks::MIN_REFETCH_INTERVAL`] unless testing).
    pub jwks_refetch_interval: Duration,
}

/// One sign-in between /login and /callback. Travels only sealed (see `axum::pending`).
#[derive(Serialize, Deserialize)]
pub struct PendingSignIn {
    /// Sent as `state`; the callback must bring it back.
    #[serde(with = "crate::secret::serde_secret")]
    pub state: SecretString,
    /// Sent as `nonce`; the ID token must carry it.
    #[serde(with = "crate::secret::serde_secret")]
    pub nonce: SecretString,
    /// PKCE verifier; only its S256 challenge left the server.
    #[serde(with = "crate::secret::serde_secret")]
    pub pkce_verifier: SecretString,
    /// Same-origin path to go to afterwards.
    pub return_to: LocalPath,
    /// Unix nanoseconds: orders a browser's pending sign-ins, however quickly they were started.
    pub created_at: u64,
    /// Unix seconds after which the callback is refused.
    pub expires_at: u64,
}

impl PendingSignIn {
    /// Fresh state, nonce and PKCE verifier (256 bits each) for a sign-in returning to `return_to`.
    pub fn new(return_to: LocalPath, lifetime: Duration) -> Self {
        let now = unix_now();
        Self {
            state: random_token(32),
            nonce: random_token(32),
            pkce_verifier: random_token(32),
            return_to,
            created_at: unix_now_nanos(),
            expires_at: now + lifetime.as_secs(),
        }
    }

    /// Whether it is past its lifetime.
    pub fn is_expired(&self) -> bool {
        unix_now() > self.expires_at
    }
}

/// The access token for Graph and what renews it. Server-side only.
#[derive(Clone, Serialize, Deserialize)]
pub struct TokenSet {
    /// The access token.
    #[serde(with = "crate::secret::serde_secret")]
    pub access_token: SecretString,
    /// Unix seconds.
    pub expires_at: u64,
    /// The refresh token, replaced at every use.
    #[serde(default, with = "crate::secret::serde_secret_option")]
    pub refresh_token: Option<SecretString>,
    /// Granted scopes.
    pub scopes: Vec<String>,
    /// The access token's lifetime when issued (`expires_in`), seconds.
    #[serde(default)]
    pub lifetime: u64,
}

impl TokenSet {
    fn from_response(response: TokenResponse) -> Self {
        Self {
            access_token: response.access_token,
            expires_at: unix_now() + response.expires_in,
            refresh_token: response.refresh_token,
            scopes: response.scope.split_whitespace().map(str::to_owned).collect(),
            lifetime: response.expires_in,
        }
    }

    /// Seconds of validity left.
    pub fn seconds_left(&self) -> u64 {
        self.expires_at.saturating_sub(unix_now())
    }

    /// Whether to refresh before use: within five minutes of expiry, or within the last tenth of
    /// a short lifetime.
    pub fn needs_refresh(&self) -> bool {
        self.seconds_left() <= REFRESH_AHEAD.as_secs().min(self.lifetime / 10)
    }

    /// Forgets the access token (after Graph refused it); the refresh token stays.
    pub fn expire_access_token(&mut self) {
        self.expires_at = 0;
    }
}

/// A completed sign-in.
pub struct SignedIn {
    /// The verified identity.
    pub claims: IdTokenClaims,
    /// The Graph profile.
    pub profile: Profile,
    /// Tokens to keep server-side.
    pub tokens: TokenSet,
}

/// Metadata and keys of the tenant, once loaded.
pub struct Provider {
    /// The discovery document.
    pub metadata: ProviderMetadata,
    /// Its signing keys.
    pub jwks: JwksCache,
}

/// The relying party. One per app; cheap to share behind an `Arc`.
pub struct EntraClient {
    config: EntraConfig,
    http: reqwest::Client,
    graph: GraphClient,
    provider: RwLock<Option<Arc<Provider>>>,
    loading: Mutex<()>,
    refreshes: crate::refresh::RefreshCoordinator,
}

impl EntraClient {
    /// Builds the client; no network yet.
    pub fn new(config: EntraConfig) -> Result<Self, reqwest::Error> {
        let http = crate::http::client()?;
        let graph = GraphClient::new(http.clone(), config.graph_endpoint.clone());
        Ok(Self {
            config,
            http,
            graph,
            provider: RwLock::new(None),
            loading: Mutex::new(()),
            refreshes: crate::refresh::RefreshCoordinator::default(),
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

    /// The provider metadata, fetched on first use and kept.
    pub async fn provider(&self) -> Result<Arc<Provider>, DiscoveryError> {
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
        let mut scopes: Vec<&str> = OIDC_SCOPES.to_vec();
        scopes.extend(self.config.scopes.iter().map(String::as_str));
        scopes.join(" ")
    }

    /// Starts a sign-in: the pending record to keep server-side, and the authorize URL to send the
    /// browser to. `claims` carries a claims challenge to satisfy.
    pub async fn begin_sign_in(
        &self,
        return_to: LocalPath,
        claims: Option<&str>,
    ) -> Result<(PendingSignIn, Url), SignInError> {
        let provider = self.provider().await?;
        let pending = PendingSignIn::new(return_to, self.config.pending_sign_in_lifetime);
        let url = authorization_url(
            &provider.metadata.authorization_endpoint,
            &self.config.client_id,
            &self.config.redirect_uri,
            &self.scope(),
            &pending,
            claims,
        );
        Ok((pending, url))
    }

    /// Finishes a sign-in whose `state` already matched `pending`: redeems the code, validates the
    /// ID token against the nonce, loads the Graph profile.
    pub async fn finish_sign_in(&self, pending: &PendingSignIn, code: &str) -> Result<SignedIn, SignInError> {
        let provider = self.provider().await?;
        let response = self
            .token_endpoint(&provider)
            .redeem_code(code, &pending.pkce_verifier, &self.config.redirect_uri, &self.scope())
            .await?;
        let id_token = response.id_token.as_ref().ok_or(SignInError::MissingIdToken)?;
        let expectations = Expectations {
            client_id: &self.config.client_id,
            tenant: self.config.authority.tenant(),
            nonce: pending.nonce.expose_secret(),
            leeway: self.config.clock_leeway,
        };
        let claims =
            id_token::verify(id_token.expose_secret(), &provider.metadata, &provider.jwks, &expectations).await?;
        let profile = self.graph.me(&response.access_token).await?;
        Ok(SignedIn { claims, profile, tokens: TokenSet::from_response(response) })
    }

    /// Tokens fit for use: `Ok(None)` when `tokens` are still fresh, `Ok(Some(new))` after a
    /// refresh (store them: the old refresh token is dead). At most one refresh per refresh token
    /// runs in this process; concurrent and late callers holding the same one share its result.
    pub async fn fresh_tokens(&self, tokens: &TokenSet) -> Result<Option<TokenSet>, RefreshFailure> {
        if !tokens.needs_refresh() {
            return Ok(None);
        }
        let Some(refresh_token) = &tokens.refresh_token else {
            return Err(RefreshFailure::NeedsSignIn("no refresh token was issued".to_owned()));
        };
        let cell = self.refreshes.cell_for(refresh_token);
        let outcome = cell
            .get_or_init(|| async {
                let outcome = match self.refresh(refresh_token).await {
                    Ok(new) => {
                        tracing::info!("access token refreshed");
                        Ok(Arc::new(new))
                    }
                    Err(err) => Err(RefreshFailure::from(err)),
                };
                let label = match &outcome {
                    Ok(_) => "refreshed",
                    Err(RefreshFailure::NeedsSignIn(_)) => "sign_in_required",
                    Err(RefreshFailure::Unavailable(_)) => "unavailable",
                };
                metrics::counter!("entra_token_refreshes_total", "outcome" => label).increment(1);
                outcome
            })
            .await
            .clone();
        if let Err(RefreshFailure::Unavailable(_)) = &outcome {
            self.refreshes.forget(refresh_token, &cell);
        }
        outcome.map(|new| Some((*new).clone()))
    }

    /// Redeems a refresh token for a new token set (the refresh token is replaced).
    async fn refresh(&self, refresh_token: &SecretString) -> Result<TokenSet, SignInError> {
        let provider = self.provider().await?;
        let response = self.token_endpoint(&provider).refresh(refresh_token, &self.scope()).await?;
        let mut fresh = TokenSet::from_response(response);
        if fresh.refresh_token.is_none() {
            // Entra sends a new one every time; if it ever does not, the old one is still ours.
            fresh.refresh_token = Some(refresh_token.clone());
        }
        Ok(fresh)
    }

    /// The issuer a front-channel logout request speaks for: its `iss` if that is an issuer of
    /// our authority (exact for a tenant; for `common`/`organizations`, the template filled with an
    /// accepted tenant id), or our tenant's issuer when `iss` is absent. `None` when `iss` is
    /// foreign, or absent for a multi-tenant authority (any tenant's `sid` could be meant).
    pub async fn front_channel_issuer(&self, iss: Option<&str>) -> Result<Option<String>, DiscoveryError> {
        let provider = self.provider().await?;
        let template = &provider.metadata.issuer;
        let Some((before, after)) = template.split_once("{tenantid}") else {
            return Ok(match iss {
                None => Some(template.clone()),
                Some(iss) => (iss == template).then(|| template.clone()),
            });
        };
        let Some(iss) = iss else { return Ok(None) };
        let tid = iss
            .strip_prefix(before)
            .and_then(|rest| rest.strip_suffix(after))
            .and_then(|tid| uuid::Uuid::parse_str(tid).ok())
            .filter(|tid| self.config.authority.tenant().accepts(*tid));
        Ok(tid.map(|tid| provider.metadata.issuer_for(tid)).filter(|issuer| issuer == iss))
    }

    /// Where to send the browser to sign out of Entra too.
    pub async fn end_session_url(&self, logout_hint: Option<&str>) -> Result<Url, SignInError> {
        let provider = self.provider().await?;
        let mut url = match &provider.metadata.end_session_endpoint {
            Some(url) => url.clone(),
            None => return Ok(self.config.post_logout_redirect_uri.clone()),
        };
        {
            let mut query = url.query_pairs_mut();
            query.append_pair("post_logout_redirect_uri", self.config.post_logout_redirect_uri.as_str());
            if let Some(hint) = logout_hint {
                query.append_pair("logout_hint", hint);
            }
        }
        Ok(url)
    }

    fn token_endpoint<'a>(&'a self, provider: &'a Provider) -> TokenEndpoint<'a> {
        TokenEndpoint {
            http: &self.http,
            url: &provider.metadata.token_endpoint,
            client_id: &self.config.client_id,
            client_secret: &self.config.client_secret,
        }
    }
}

/// The /authorize URL for a pending sign-in: code flow, PKCE S256, state, nonce.
pub fn authorization_url(
    endpoint: &Url,
    client_id: &str,
    redirect_uri: &Url,
    scope: &str,
    pending: &PendingSignIn,
    claims: Option<&str>,
) -> Url {
    let mut url = endpoint.clone();
    {
        let mut query = url.query_pairs_mut();
        query
            .append_pair("client_id", client_id)
            .append_pair("response_type", "code")
            .append_pair("redirect_uri", redirect_uri.as_str())
            // query, not form_post: a cross-site POST would not carry our SameSite=Lax cookie.
            .append_pair("response_mode", "query")
            .append_pair("scope", scope)
            .append_pair("state", pending.state.expose_secret())
            .append_pair("nonce", pending.nonce.expose_secret())
            .append_pair("code_challenge", &pkce_challenge(&pending.pkce_verifier))
            .append_pair("code_challenge_method", "S256");
        if let Some(claims) = claims {
            query.append_pair("claims", claims);
        }
    }
    url
}

/// Unix nanoseconds now (a `u64` lasts until 2554).
pub fn unix_now_nanos() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX))
        .unwrap_or_default()
}

/// Unix seconds now.
pub fn unix_now() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or_default()
}
