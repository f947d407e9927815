//! [`EntraClient`]'s token requests after sign-in: the session's refresh (single flight), tokens
//! for other resources through the refresh token, the app's own tokens, on-behalf-of tokens, and
//! a user's groups asked of Graph with the app's own token.

use secrecy::{ExposeSecret, SecretString};
use url::Url;
use uuid::Uuid;

use crate::app_tokens::AppTokenError;
use crate::authority::Tenant;
use crate::client::{EntraClient, UserGroupsError};
use crate::error::SignInError;
use crate::id_token;
use crate::refresh::{self, RefreshFailure, Refreshed};
use crate::sign_in_options::{GRAPH_RESOURCE, ResourceScopes};
use crate::tokens::{ResourceToken, TokenSet};

impl EntraClient {
    /// Tokens fit for use by user `object_id` of `tenant_id`: `Ok(None)` when `tokens` are still
    /// fresh, `Ok(Some(refreshed))` after a refresh (store its tokens: its refresh token replaces
    /// the old one; and its memberships, re-read from the refreshed ID token and Graph). At most one
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
    /// ([`AccessTokenClaims::has_groups_overage`](crate::AccessTokenClaims::has_groups_overage)), which has no token of the user's to ask with.
    /// The app needs the `GroupMember.Read.All` application permission, admin-consented.
    pub async fn user_group_ids(&self, user: Uuid) -> Result<Vec<String>, UserGroupsError> {
        let token = self.app_token(graph_resource(&self.config.graph_endpoint)).await?;
        Ok(self.graph.user_group_ids(&token.access_token, user).await?)
    }
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
