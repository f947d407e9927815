//! The relying party: provider metadata (loaded once, retried with backoff), the two halves of
//! the auth code + PKCE flow, token refresh and the URLs of sign-out.

use std::sync::Arc;
use std::time::Duration;

use secrecy::{ExposeSecret, SecretString};
use tokio::sync::{Mutex, RwLock};
use url::Url;
use uuid::Uuid;

use crate::app_tokens::{AppTokenError, AppTokens};
use crate::authority::Tenant;
use crate::bearer::{self, AccessTokenClaims, BearerError, BearerPolicy};
use crate::config::EntraConfig;
use crate::credential::Credentials;
use crate::credential::error::CredentialError;
use crate::discovery::{self, DiscoveryError, ProviderMetadata};
use crate::error::SignInError;
use crate::graph::{GraphClient, GraphError, Profile};
use crate::id_token::{self, Expectations, IdTokenClaims};
use crate::jwks::JwksCache;
use crate::memberships::{Memberships, claims_request, needs_graph_for_groups};
use crate::on_behalf_of::OnBehalfOfTokens;
use crate::pending_sign_in::{PendingSignIn, authorization_url};
use crate::refresh::{self, RefreshCoordinator, RefreshFailure, Refreshed};
use crate::return_to::LocalPath;
use crate::sign_in_options::{GRAPH_RESOURCE, ResourceScopes, SignInOptions};
use crate::token_endpoint::{TokenEndpoint, TokenError, TokenResponse};
use crate::tokens::{ResourceToken, TokenSet};

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

    /// The scope a pending sign-in authorizes: its own (incremental consent) or the sign-in's.
    fn scope_of(&self, pending: &PendingSignIn) -> String {
        match &pending.scopes {
            Some(scopes) => self.scope_with(scopes),
            None => self.scope(),
        }
    }

    /// Starts a sign-in: the pending record to keep server-side, and the authorize URL to send the
    /// browser to, with the hints and prompt of `options` and its claims challenge merged with the
    /// declared client capabilities.
    pub async fn begin_sign_in(
        &self,
        return_to: LocalPath,
        options: &SignInOptions,
    ) -> Result<(PendingSignIn, Url), SignInError> {
        let provider = self.provider().await?;
        let mut pending = PendingSignIn::new(return_to, self.config.pending_sign_in_lifetime);
        pending.scopes = options.scopes.as_ref().map(|scopes| scopes.scopes().to_vec());
        let options = SignInOptions {
            claims: claims_request(options.claims.as_deref(), &self.config.client_capabilities),
            ..options.clone()
        };
        let url = authorization_url(
            &provider.metadata.authorization_endpoint,
            &self.config.client_id,
            &self.config.redirect_uri,
            &self.scope_of(&pending),
            &pending,
            &options,
        );
        Ok((pending, url))
    }

    /// Finishes a sign-in whose `state` already matched `pending`: redeems the code, validates the
    /// ID token against the nonce, refuses tenants not allowed, resolves a groups overage through
    /// Graph, and loads the Graph profile if the configuration asks for it.
    pub async fn finish_sign_in(&self, pending: &PendingSignIn, code: &str) -> Result<SignedIn, SignInError> {
        let provider = self.provider().await?;
        let response = self
            .with_client_auth(&provider, |endpoint| async move {
                endpoint
                    .redeem_code(code, &pending.pkce_verifier, &self.config.redirect_uri, &self.scope_of(pending))
                    .await
            })
            .await?;
        let id_token = response.id_token.as_ref().ok_or(SignInError::MissingIdToken)?;
        let expectations = self.expectations(pending.nonce.expose_secret());
        let claims =
            id_token::verify(id_token.expose_secret(), &provider.metadata, &provider.jwks, &expectations).await?;
        if !self.config.allows_tenant(claims.tid) {
            return Err(SignInError::TenantNotAllowed(claims.tid));
        }
        // Incremental consent brings a token for the resource consented to, maybe not Graph:
        // Graph is not asked then (the session's memberships and profile stand).
        let incremental = pending.scopes.is_some();
        let memberships = match incremental {
            true => Memberships::from_claims(&claims),
            false => self.memberships(&claims, &response.access_token).await?,
        };
        let profile = match self.config.profile_at_sign_in && !incremental {
            true => Some(self.graph.me(&response.access_token).await?),
            false => None,
        };
        let mut tokens = TokenSet::from_response(response);
        if !self.config.keep_id_token {
            tokens.id_token = None;
        }
        Ok(SignedIn { claims, memberships, profile, tokens })
    }

    /// Checks an access token another application presented to this app as
    /// `Authorization: Bearer` (see [`BearerPolicy`]) and says who calls: the signature against
    /// the tenant's keys, issuer, tenant (and `allowed_tenants`), audience, lifetime, caller.
    pub async fn verify_bearer(&self, token: &str, policy: &BearerPolicy) -> Result<AccessTokenClaims, BearerError> {
        let provider = self.provider().await.map_err(|err| BearerError::Unavailable(err.to_string()))?;
        bearer::verify(token, &provider.metadata, &provider.jwks, policy, &self.config).await
    }

    fn expectations<'a>(&'a self, nonce: &'a str) -> Expectations<'a> {
        Expectations {
            client_id: &self.config.client_id,
            tenant: self.config.authority.tenant(),
            nonce,
            leeway: self.config.clock_leeway,
        }
    }

    /// The ID token's roles, groups and directory roles; on groups overage, the groups from Graph.
    async fn memberships(
        &self,
        claims: &IdTokenClaims,
        access_token: &SecretString,
    ) -> Result<Memberships, GraphError> {
        let mut memberships = Memberships::from_claims(claims);
        if needs_graph_for_groups(claims) {
            let resolved = self.graph.member_group_ids(access_token).await;
            let outcome = if resolved.is_ok() { "resolved" } else { "failed" };
            metrics::counter!("entra_group_overage_resolutions_total", "outcome" => outcome).increment(1);
            memberships.groups = resolved?;
            memberships.groups_from_graph = true;
            tracing::info!(oid = %claims.oid, groups = memberships.groups.len(), "groups overage resolved through Graph");
        }
        Ok(memberships)
    }

    /// Tokens fit for use by user `object_id` of `tenant_id`: `Ok(None)` when `tokens` are still
    /// fresh, `Ok(Some(refreshed))` after a refresh (store its tokens: the old refresh token is
    /// dead; and its memberships, re-read from the refreshed ID token and Graph). At most one
    /// refresh per refresh token runs in this process; concurrent and late callers holding the
    /// same one share its result.
    pub async fn fresh_tokens(
        &self,
        tokens: &TokenSet,
        object_id: Uuid,
        tenant_id: Uuid,
    ) -> Result<Option<Refreshed>, RefreshFailure> {
        if !tokens.needs_refresh() {
            return Ok(None);
        }
        let Some(refresh_token) = &tokens.refresh_token else {
            return Err(RefreshFailure::NeedsSignIn("no refresh token was issued".to_owned()));
        };
        let refreshed = self
            .refreshes
            .share(refresh_token, "", "entra_token_refreshes_total", || {
                self.refresh(refresh_token, (object_id, tenant_id))
            })
            .await?;
        Ok(Some((*refreshed).clone()))
    }

    /// Tokens for `scopes` (another resource, or more of the sign-in one) through the session's
    /// refresh token, which Entra honours for every resource the user consented to: one request
    /// per refresh token and scopes at a time, shared by concurrent callers. The answer carries a
    /// new refresh token (store it). [`RefreshFailure::NeedsSignIn`] means consent (or another
    /// interaction) is needed: authorize those scopes interactively.
    pub async fn tokens_for_scopes(
        &self,
        refresh_token: &SecretString,
        scopes: &ResourceScopes,
    ) -> Result<TokenSet, RefreshFailure> {
        let purpose = scopes.to_scope_string();
        let scope = format!("{purpose} offline_access");
        let request = || async {
            let provider = self.provider().await?;
            let response = self
                .with_client_auth(&provider, |endpoint| {
                    let scope = scope.clone();
                    async move { endpoint.refresh(refresh_token, &scope).await }
                })
                .await?;
            let mut tokens = TokenSet::from_response(response);
            tokens.id_token = None;
            if tokens.refresh_token.is_none() {
                tokens.refresh_token = Some(refresh_token.clone());
            }
            Ok(Refreshed { tokens, memberships: None })
        };
        let refreshed =
            self.refreshes.share_fresh(refresh_token, &purpose, "entra_resource_tokens_total", request).await?;
        Ok(refreshed.tokens.clone())
    }

    /// Redeems a refresh token for new tokens (the refresh token is replaced). A refreshed ID
    /// token is verified like the first (bar the nonce) and must be about the same user.
    async fn refresh(&self, refresh_token: &SecretString, user: (Uuid, Uuid)) -> Result<Refreshed, SignInError> {
        let provider = self.provider().await?;
        let response = self
            .with_client_auth(&provider, |endpoint| async move { endpoint.refresh(refresh_token, &self.scope()).await })
            .await?;
        let memberships = match &response.id_token {
            Some(id_token) => {
                let expectations = self.expectations("");
                let claims = id_token::verify_refreshed(
                    id_token.expose_secret(),
                    &provider.metadata,
                    &provider.jwks,
                    &expectations,
                    user,
                )
                .await?;
                // New tokens are in hand (and the old refresh token may be spent): a Graph failure
                // must not lose them, so the previous memberships stand until the next refresh.
                self.memberships(&claims, &response.access_token)
                    .await
                    .inspect_err(|err| tracing::warn!(error = %err, "groups overage not resolved at refresh"))
                    .ok()
            }
            None => None,
        };
        let mut fresh = TokenSet::from_response(response);
        if !self.config.keep_id_token {
            fresh.id_token = None;
        }
        if fresh.refresh_token.is_none() {
            // Entra sends a new one every time; if it ever does not, the old one is still ours.
            fresh.refresh_token = Some(refresh_token.clone());
        }
        tracing::info!("access token refreshed");
        Ok(Refreshed { tokens: fresh, memberships })
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

    /// A token of the app itself (client credentials: no user) for `resource`
    /// (`api://<app id>`, `https://graph.microsoft.com`), with the application permissions an
    /// admin granted it on that resource in `roles`: for work the app does as itself. Any
    /// credential works (secret, certificate, managed identity); the token is kept until shortly
    /// before it expires, and concurrent callers share one request. Needs a tenant's authority.
    pub async fn app_token(&self, resource: &str) -> Result<ResourceToken, AppTokenError> {
        let tenant = self.config.authority.tenant();
        if matches!(tenant, Tenant::Common | Tenant::Organizations | Tenant::Consumers) {
            return Err(AppTokenError::NoTenant(tenant.to_string()));
        }
        let resource = resource.trim_end_matches('/');
        let scope = format!("{resource}/.default");
        let fetch = || async {
            let provider = self.provider().await?;
            let response = self
                .with_client_auth(&provider, |endpoint| {
                    let scope = scope.clone();
                    async move { endpoint.client_credentials(&scope).await }
                })
                .await?;
            metrics::counter!("entra_app_tokens_total").increment(1);
            Ok(TokenSet::from_response(response))
        };
        Ok(self.app_tokens.get_or_fetch(resource, fetch).await?)
    }

    /// A token for `scopes` (another resource: Graph, an API of the organisation's) as the user
    /// whose access token for this app is `assertion` (the caller's `Authorization: Bearer`,
    /// checked first with [`verify_bearer`](Self::verify_bearer)): the on-behalf-of grant, for a
    /// web API calling on with its caller's rights. Kept until shortly before it expires; callers
    /// with the same token share one request. [`RefreshFailure::NeedsSignIn`]: the user (or an
    /// admin) has not consented to this app having those scopes, or Entra wants interaction (MFA):
    /// the calling client must get it and call again.
    pub async fn on_behalf_of(
        &self,
        assertion: &str,
        scopes: &ResourceScopes,
    ) -> Result<ResourceToken, RefreshFailure> {
        let scope = scopes.to_scope_string();
        let key = refresh::key_of(assertion, &scope);
        if let Some(token) = self.on_behalf_of_tokens.kept(&key) {
            return Ok(token);
        }
        let caller = SecretString::from(assertion.to_owned());
        let scope = scope.as_str();
        let request = || async move {
            let provider = self.provider().await?;
            let response = self
                .with_client_auth(&provider, |endpoint| async move { endpoint.on_behalf_of(assertion, scope).await })
                .await?;
            Ok(Refreshed { tokens: TokenSet::from_response(response), memberships: None })
        };
        let purpose = format!("on-behalf-of {scope}");
        let refreshed =
            self.refreshes.share_fresh(&caller, &purpose, "entra_on_behalf_of_tokens_total", request).await?;
        let token = ResourceToken::of(&refreshed.tokens);
        self.on_behalf_of_tokens.keep(key, refreshed.tokens.clone());
        Ok(token)
    }

    /// Every group `user` is a member of (directly or through nested groups), asked of Graph with
    /// the app's own token: for a caller's access token with the groups overage
    /// ([`AccessTokenClaims::has_groups_overage`]), which has no token of the user's to ask with.
    /// The app needs the `GroupMember.Read.All` application permission, admin-consented.
    pub async fn user_group_ids(&self, user: Uuid) -> Result<Vec<String>, UserGroupsError> {
        let token = self.app_token(graph_resource(&self.config.graph_endpoint)).await?;
        Ok(self.graph.user_group_ids(&token.access_token, user).await?)
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

/// The resource of the Graph at `endpoint` for a token of the app's own: the endpoint's origin
/// for the national clouds' Graphs, else the public one's (also for an emulated Graph, which
/// accepts only tokens for it).
fn graph_resource(endpoint: &Url) -> &'static str {
    const NATIONAL: [&str; 3] =
        ["https://graph.microsoft.us", "https://dod-graph.microsoft.us", "https://microsoftgraph.chinacloudapi.cn"];
    let origin = endpoint.origin().ascii_serialization();
    NATIONAL.into_iter().find(|national| *national == origin).unwrap_or(GRAPH_RESOURCE)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_app_asks_the_national_clouds_graph_for_itself_and_the_public_one_otherwise() {
        let resource = |endpoint: &str| graph_resource(&Url::parse(endpoint).unwrap());
        assert_eq!(resource("https://graph.microsoft.us/"), "https://graph.microsoft.us");
        assert_eq!(resource("https://microsoftgraph.chinacloudapi.cn"), "https://microsoftgraph.chinacloudapi.cn");
        assert_eq!(resource("https://graph.microsoft.com"), "https://graph.microsoft.com");
        assert_eq!(resource("http://127.0.0.1:8443/graph"), "https://graph.microsoft.com", "an emulated Graph");
        assert_eq!(resource("https://graph.microsoft.us.evil.example"), "https://graph.microsoft.com");
    }
}
