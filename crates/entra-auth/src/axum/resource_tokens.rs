//! Tokens for other resources than the sign-in's (an API of your own, more Graph permissions),
//! obtained with the session's refresh token, which Entra honours for every resource the user
//! consented to, and kept server-side beside the sign-in tokens: one per resource, at most
//! [`MAX_RESOURCE_TOKENS`], never in a cookie. When consent is missing, the user is sent to
//! authorize exactly those scopes and comes back (incremental consent).

use secrecy::SecretString;
use serde::{Deserialize, Serialize};
use tower_sessions::Session;

use crate::axum::session::{self, AccessTokenError};
use crate::client::EntraClient;
use crate::error::SignInError;
use crate::refresh::RefreshFailure;
use crate::sign_in_options::{GRAPH_RESOURCE, ResourceScopes, resource_of};
use crate::tokens::TokenSet;

const RESOURCE_TOKENS_KEY: &str = "entra.resource_tokens";
/// At most this many resources' tokens are kept per session; the one expiring first goes.
pub const MAX_RESOURCE_TOKENS: usize = 8;
const OIDC: [&str; 4] = ["openid", "profile", "email", "offline_access"];

/// Resource → its latest token (without refresh token: the session has one for all).
#[derive(Default, Serialize, Deserialize)]
struct ResourceTokens(Vec<(String, TokenSet)>);

fn store_error(err: tower_sessions::session::Error) -> SignInError {
    SignInError::Session(err)
}

/// The resource the sign-in tokens are for (Graph when they name none).
fn resource_of_tokens(tokens: &TokenSet) -> String {
    tokens
        .scopes
        .iter()
        .find(|scope| !OIDC.contains(&scope.to_ascii_lowercase().as_str()))
        .map(|scope| resource_of(scope))
        .unwrap_or_else(|| GRAPH_RESOURCE.to_owned())
}

async fn cached(session: &Session) -> Result<ResourceTokens, SignInError> {
    Ok(session.get(RESOURCE_TOKENS_KEY).await.map_err(store_error)?.unwrap_or_default())
}

/// Keeps `tokens` for `resource` (replacing that resource's), the refresh token they came with as
/// the session's, and at most [`MAX_RESOURCE_TOKENS`] resources.
pub(crate) async fn keep(session: &Session, resource: &str, mut tokens: TokenSet) -> Result<(), SignInError> {
    if let Some(refresh_token) = tokens.refresh_token.take()
        && let Some(mut sign_in_tokens) = session::tokens(session).await?
    {
        sign_in_tokens.refresh_token = Some(refresh_token);
        session::store_tokens(session, &sign_in_tokens).await?;
    }
    let mut kept = cached(session).await?;
    kept.0.retain(|(known, _)| known != resource);
    kept.0.push((resource.to_owned(), tokens));
    while kept.0.len() > MAX_RESOURCE_TOKENS {
        let soonest = kept.0.iter().enumerate().min_by_key(|(_, (_, tokens))| tokens.expires_at).map(|(at, _)| at);
        if let Some(at) = soonest {
            kept.0.remove(at);
        }
    }
    session.insert(RESOURCE_TOKENS_KEY, &kept).await.map_err(store_error)
}

/// A valid access token for `scopes`: the sign-in token when it covers them, else the one kept
/// for their resource while valid, else a new one through the refresh token (single-flight per
/// refresh token and scopes). `AccessTokenError::Refresh(RefreshFailure::NeedsSignIn)` means the
/// user must consent: send them to [`consent_path`](crate::axum::consent_path).
pub async fn access_token_for(
    client: &EntraClient,
    session: &Session,
    scopes: &ResourceScopes,
) -> Result<SecretString, AccessTokenError> {
    let sign_in_tokens = session::tokens(session).await?.ok_or(AccessTokenError::NotSignedIn)?;
    if resource_of_tokens(&sign_in_tokens) == scopes.resource() && scopes.covered_by(&sign_in_tokens.scopes) {
        return session::access_token(client, session).await;
    }
    let kept = cached(session).await?;
    let fresh = kept
        .0
        .iter()
        .find(|(resource, tokens)| resource == scopes.resource() && scopes.covered_by(&tokens.scopes))
        .filter(|(_, tokens)| !tokens.needs_refresh());
    if let Some((_, tokens)) = fresh {
        return Ok(tokens.access_token.clone());
    }
    let refresh_token = sign_in_tokens
        .refresh_token
        .ok_or_else(|| RefreshFailure::NeedsSignIn("no refresh token was issued".to_owned()))?;
    let tokens = client.tokens_for_scopes(&refresh_token, scopes).await?;
    let access_token = tokens.access_token.clone();
    keep(session, scopes.resource(), tokens).await?;
    Ok(access_token)
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use secrecy::ExposeSecret;
    use tower_sessions::MemoryStore;

    use super::*;

    #[tokio::test]
    async fn at_most_eight_resources_are_kept_and_the_refresh_token_joins_the_sign_in_tokens() {
        let session = Session::new(None, Arc::new(MemoryStore::default()), None);
        session.insert(session::TOKENS_KEY, TokenSet::for_tests(1, Some("rt-0"))).await.unwrap();
        // Nine resources; the one expiring soonest (the fifth) goes.
        for n in 0..9u64 {
            let expires_at = if n == 4 { 10 } else { 1_000 + n };
            keep(&session, &format!("api://{n}"), TokenSet::for_tests(expires_at, Some(&format!("rt-{}", n + 1))))
                .await
                .unwrap();
        }
        let kept = cached(&session).await.unwrap();
        assert_eq!(kept.0.len(), MAX_RESOURCE_TOKENS);
        assert!(!kept.0.iter().any(|(resource, _)| resource == "api://4"));
        assert!(kept.0.iter().all(|(_, tokens)| tokens.refresh_token.is_none()), "one refresh token, the session's");
        let sign_in = session::tokens(&session).await.unwrap().unwrap();
        assert_eq!(sign_in.refresh_token.unwrap().expose_secret(), "rt-9", "the newest refresh token is kept");
        // A resource's token is replaced, not duplicated.
        keep(&session, "api://8", TokenSet::for_tests(5_000, None)).await.unwrap();
        let kept = cached(&session).await.unwrap();
        assert_eq!(kept.0.iter().filter(|(resource, _)| resource == "api://8").count(), 1);
    }
}
