//! The app's own access tokens (the client credentials grant: no user), for work the app does as
//! itself: a background job calling an API of the organisation's, Graph with application
//! permissions. One per resource, kept until shortly before it expires; a request at a time, so
//! concurrent callers share one. See `docs/ENTRA.md`, "Access tokens for this app".

use std::future::Future;

use tokio::sync::Mutex;

use crate::error::SignInError;
use crate::tokens::{ResourceToken, TokenSet};

/// At most this many resources' tokens are kept (resources come from the app's code, not from
/// requests; the bound is a safeguard).
const MAX_KEPT: usize = 16;

/// Why the app could not have a token of its own.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum AppTokenError {
    /// The authority is `common`, `organizations` or `consumers`: a token of the app itself is
    /// issued by one tenant (Entra answers AADSTS50059 otherwise).
    #[error("the app's own tokens need a tenant's authority (a tenant id or domain as TENANT_ID), not '{0}'")]
    NoTenant(String),
    /// Entra refused (no application permission is needed for a token, but the credential is) or
    /// could not be asked.
    #[error(transparent)]
    Request(#[from] SignInError),
}

/// The app's tokens, by resource.
#[derive(Default)]
pub(crate) struct AppTokens(Mutex<Vec<(String, TokenSet)>>);

impl AppTokens {
    /// The kept token for `resource` while it has time left, else one from `fetch`, kept.
    pub(crate) async fn get_or_fetch<F, Fut>(&self, resource: &str, fetch: F) -> Result<ResourceToken, SignInError>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<TokenSet, SignInError>>,
    {
        // Held across the request: whoever waits finds the token the first caller got.
        let mut kept = self.0.lock().await;
        if let Some((_, tokens)) =
            kept.iter().find(|(kept_for, tokens)| kept_for == resource && !tokens.needs_refresh())
        {
            return Ok(ResourceToken::of(tokens));
        }
        let tokens = fetch().await?;
        let token = ResourceToken::of(&tokens);
        kept.retain(|(kept_for, _)| kept_for != resource);
        if kept.len() >= MAX_KEPT {
            kept.remove(0);
        }
        kept.push((resource.to_owned(), tokens));
        Ok(token)
    }
}

#[cfg(test)]
mod tests {
    use secrecy::ExposeSecret;

    use super::*;

    #[tokio::test]
    async fn a_token_is_kept_per_resource_until_it_is_due_and_the_oldest_resource_goes_first() {
        let tokens = AppTokens::default();
        let later = crate::clock::unix_now() + 3_600;
        let fetched = |expires_at| async move { Ok(TokenSet::for_tests(expires_at, None)) };
        let first = tokens.get_or_fetch("api://a", || fetched(later)).await.unwrap();
        let again = tokens.get_or_fetch("api://a", || async { panic!("kept: no second request") }).await.unwrap();
        assert_eq!(again.access_token.expose_secret(), first.access_token.expose_secret());
        // Another resource, its own token; one due for renewal is fetched again.
        let other = tokens.get_or_fetch("api://b", || fetched(later + 1)).await.unwrap();
        assert_ne!(other.access_token.expose_secret(), first.access_token.expose_secret());
        tokens.get_or_fetch("api://c", || fetched(1)).await.unwrap();
        let renewed = tokens.get_or_fetch("api://c", || fetched(later + 2)).await.unwrap();
        assert_eq!(renewed.expires_at, later + 2);
        // A failed request keeps nothing and is not remembered.
        let failed = tokens.get_or_fetch("api://d", || async { Err(SignInError::MissingCode) }).await;
        assert!(failed.is_err());
        assert!(tokens.0.lock().await.iter().all(|(resource, _)| resource != "api://d"));
        for n in 0..MAX_KEPT {
            tokens.get_or_fetch(&format!("api://more-{n}"), || fetched(later)).await.unwrap();
        }
        let kept = tokens.0.lock().await;
        assert_eq!(kept.len(), MAX_KEPT);
        assert!(kept.iter().all(|(resource, _)| resource != "api://a"), "the oldest went");
    }
}
