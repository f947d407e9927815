//! [`EntraClient`]'s sign-in and sign-out: the authorize URL, the code's redemption with the ID
//! token verified and memberships resolved, the end-session URL and front-channel logout's issuer.

use secrecy::{ExposeSecret, SecretString};
use url::Url;

use crate::client::{EntraClient, SignedIn};
use crate::discovery::DiscoveryError;
use crate::error::SignInError;
use crate::graph::GraphError;
use crate::id_token::{self, Expectations, IdTokenClaims};
use crate::memberships::{Memberships, claims_request, needs_graph_for_groups};
use crate::pending_sign_in::{PendingSignIn, authorization_url};
use crate::return_to::LocalPath;
use crate::sign_in_options::SignInOptions;
use crate::tokens::TokenSet;

impl EntraClient {
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

    pub(super) fn expectations<'a>(&'a self, nonce: &'a str) -> Expectations<'a> {
        Expectations {
            client_id: &self.config.client_id,
            tenant: self.config.authority.tenant(),
            nonce,
            leeway: self.config.clock_leeway,
        }
    }

    /// The ID token's roles, groups and directory roles; on groups overage, the groups from Graph.
    pub(super) async fn memberships(
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
}
