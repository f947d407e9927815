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
use crate::clock::unix_now;
use crate::error::SignInError;
use crate::refresh::RefreshFailure;
use crate::sign_in_options::{GRAPH_RESOURCE, ResourceScopes, resource_of};
use crate::tokens::{ResourceToken, TokenSet};

const RESOURCE_TOKENS_KEY: &str = "entra.resource_tokens";
const CONSENT_NEEDED_KEY: &str = "entra.consent_needed";
/// At most this many resources' tokens are kept per session; the one expiring first goes.
pub const MAX_RESOURCE_TOKENS: usize = 8;
/// Once Entra has said that the user must consent to some scopes (or sign in again), they are not
/// asked for again for this long, unless a token for their resource arrives meanwhile (the user
/// consented): a page whose scripts keep calling makes no stream of token requests that can
/// only fail.
pub const CONSENT_NEEDED_REMEMBERED: std::time::Duration = std::time::Duration::from_secs(30);
const OIDC: [&str; 4] = ["openid", "profile", "email", "offline_access"];

/// Resource → its latest token (without refresh token: the session has one for all).
#[derive(Default, Serialize, Deserialize)]
struct ResourceTokens(Vec<(String, TokenSet)>);

/// Scopes (as asked, space-separated) → until when (Unix seconds) Entra is not asked for them
/// again (see [`CONSENT_NEEDED_REMEMBERED`]).
#[derive(Default, Serialize, Deserialize)]
struct ConsentNeeded(Vec<(String, u64)>);

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
    forget_consent_needed(session, |scopes| resource_of(scopes.split(' ').next().unwrap_or_default()) == resource)
        .await?;
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
    resource_token(client, session, scopes).await.map(|token| token.access_token)
}

/// The same as [`access_token_for`], with the token's expiry (for an app that passes the token
/// on, as App Service authentication's `X-MS-TOKEN-AAD-EXPIRES-ON` does).
pub async fn resource_token(
    client: &EntraClient,
    session: &Session,
    scopes: &ResourceScopes,
) -> Result<ResourceToken, AccessTokenError> {
    let sign_in_tokens = session::tokens(session).await?.ok_or(AccessTokenError::NotSignedIn)?;
    if covers(&sign_in_tokens, scopes) {
        return session::fresh_tokens(client, session).await.map(|tokens| ResourceToken::of(&tokens));
    }
    let kept = cached(session).await?;
    let fresh = kept
        .0
        .into_iter()
        .find(|(resource, tokens)| resource == scopes.resource() && scopes.covered_by(&tokens.scopes))
        .filter(|(_, tokens)| !tokens.needs_refresh());
    if let Some((_, tokens)) = fresh {
        return Ok(ResourceToken::of(&tokens));
    }
    let refresh_token = sign_in_tokens
        .refresh_token
        .ok_or_else(|| RefreshFailure::NeedsSignIn("no refresh token was issued".to_owned()))?;
    let wanted = scopes.to_scope_string();
    let needed: ConsentNeeded = session.get(CONSENT_NEEDED_KEY).await.map_err(store_error)?.unwrap_or_default();
    if needed.said_moments_ago(&wanted, unix_now()) {
        let why = "Entra asked for consent (or a new sign-in) moments ago";
        return Err(RefreshFailure::NeedsSignIn(why.to_owned()).into());
    }
    let tokens = match client.tokens_for_scopes(&refresh_token, scopes).await {
        Ok(tokens) => tokens,
        Err(RefreshFailure::NeedsSignIn(why)) => {
            remember_consent_needed(session, needed, wanted).await?;
            return Err(RefreshFailure::NeedsSignIn(why).into());
        }
        Err(error) => return Err(error.into()),
    };
    let token = ResourceToken::of(&tokens);
    keep(session, scopes.resource(), tokens).await?;
    Ok(token)
}

impl ConsentNeeded {
    /// Whether Entra said, less than [`CONSENT_NEEDED_REMEMBERED`] before `now`, that `wanted` needs
    /// consent.
    fn said_moments_ago(&self, wanted: &str, now: u64) -> bool {
        self.0.iter().any(|(asked, until)| asked == wanted && *until > now)
    }
}

/// Notes that Entra wants interaction for `wanted` (see [`CONSENT_NEEDED_REMEMBERED`]).
async fn remember_consent_needed(
    session: &Session,
    mut needed: ConsentNeeded,
    wanted: String,
) -> Result<(), SignInError> {
    let now = unix_now();
    needed.0.retain(|(asked, until)| *asked != wanted && *until > now);
    needed.0.push((wanted, now + CONSENT_NEEDED_REMEMBERED.as_secs()));
    // A bound whatever asks (scopes come from the app's code, not from users, but still).
    let excess = needed.0.len().saturating_sub(MAX_RESOURCE_TOKENS);
    needed.0.drain(..excess);
    session.insert(CONSENT_NEEDED_KEY, &needed).await.map_err(store_error)
}

/// Forgets what Entra said of the scopes `which` picks (a token for them arrived).
async fn forget_consent_needed(session: &Session, which: impl Fn(&str) -> bool) -> Result<(), SignInError> {
    let Some(mut needed) = session.get::<ConsentNeeded>(CONSENT_NEEDED_KEY).await.map_err(store_error)? else {
        return Ok(());
    };
    needed.0.retain(|(asked, _)| !which(asked));
    match needed.0.is_empty() {
        true => session.remove_value(CONSENT_NEEDED_KEY).await.map(drop).map_err(store_error),
        false => session.insert(CONSENT_NEEDED_KEY, &needed).await.map_err(store_error),
    }
}

/// Forgets the access token for `scopes` (the sign-in one when it covers them, else the one kept
/// for their resource), so the next [`resource_token`] gets a new one: after an API refused it,
/// or when the user asks for fresh tokens.
pub async fn expire_access_token_for(session: &Session, scopes: &ResourceScopes) -> Result<(), SignInError> {
    match session::tokens(session).await? {
        Some(sign_in_tokens) if covers(&sign_in_tokens, scopes) => session::expire_access_token(session).await,
        Some(_) => {
            let mut kept = cached(session).await?;
            let before = kept.0.len();
            kept.0.retain(|(resource, _)| resource != scopes.resource());
            if kept.0.len() == before {
                return Ok(());
            }
            session.insert(RESOURCE_TOKENS_KEY, &kept).await.map_err(store_error)
        }
        None => Ok(()),
    }
}

/// Whether the sign-in tokens are for `scopes`' resource and carry all of them.
fn covers(sign_in_tokens: &TokenSet, scopes: &ResourceScopes) -> bool {
    resource_of_tokens(sign_in_tokens) == scopes.resource() && scopes.covered_by(&sign_in_tokens.scopes)
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

    #[tokio::test]
    async fn a_token_for_a_resource_forgets_that_its_scopes_needed_consent() {
        let session = Session::new(None, Arc::new(MemoryStore::default()), None);
        for wanted in ["api://ab/read api://ab/write", "api://cd/read"] {
            remember_consent_needed(&session, ConsentNeeded::default(), wanted.to_owned()).await.unwrap();
            let needed: ConsentNeeded = session.get(CONSENT_NEEDED_KEY).await.unwrap().unwrap();
            // Each call is given what the session held; here nothing, so one entry each time.
            assert_eq!(needed.0.len(), 1);
            assert!(needed.0[0].1 > crate::clock::unix_now(), "remembered for a while");
        }
        let both = ConsentNeeded(vec![("api://ab/read api://ab/write".into(), u64::MAX)]);
        remember_consent_needed(&session, both, "api://cd/read".to_owned()).await.unwrap();
        keep(&session, "api://ab", TokenSet::for_tests(1_000, None)).await.unwrap();
        let needed: ConsentNeeded = session.get(CONSENT_NEEDED_KEY).await.unwrap().unwrap();
        assert_eq!(needed.0.iter().map(|(asked, _)| asked.as_str()).collect::<Vec<_>>(), ["api://cd/read"]);
        keep(&session, "api://cd", TokenSet::for_tests(1_000, None)).await.unwrap();
        assert!(session.get::<ConsentNeeded>(CONSENT_NEEDED_KEY).await.unwrap().is_none(), "nothing left to remember");

        // Bounded: the oldest go first.
        let many = ConsentNeeded((0..MAX_RESOURCE_TOKENS).map(|n| (format!("api://{n}/read"), u64::MAX)).collect());
        remember_consent_needed(&session, many, "api://new/read".to_owned()).await.unwrap();
        let needed: ConsentNeeded = session.get(CONSENT_NEEDED_KEY).await.unwrap().unwrap();
        assert_eq!(needed.0.len(), MAX_RESOURCE_TOKENS);
        assert_eq!((needed.0[0].0.as_str(), needed.0[7].0.as_str()), ("api://1/read", "api://new/read"));
    }

    #[tokio::test]
    async fn expiring_the_token_for_some_scopes_forgets_that_resources_token_only() {
        let session = Session::new(None, Arc::new(MemoryStore::default()), None);
        let later = crate::clock::unix_now() + 3_600;
        let mut sign_in = TokenSet::for_tests(later, Some("rt"));
        sign_in.scopes = vec!["openid".into(), "User.Read".into()];
        session.insert(session::TOKENS_KEY, &sign_in).await.unwrap();
        for resource in ["api://ab", "api://cd"] {
            keep(&session, resource, TokenSet::for_tests(later, None)).await.unwrap();
        }
        let resources = |kept: ResourceTokens| kept.0.into_iter().map(|(resource, _)| resource).collect::<Vec<_>>();

        expire_access_token_for(&session, &"api://ab/access_as_user".parse().unwrap()).await.unwrap();
        assert_eq!(resources(cached(&session).await.unwrap()), ["api://cd"]);
        assert_eq!(session::tokens(&session).await.unwrap().unwrap().expires_at, later, "the sign-in token stays");

        // Scopes the sign-in token carries: that one is forgotten (its refresh token stays).
        expire_access_token_for(&session, &"User.Read".parse().unwrap()).await.unwrap();
        let sign_in = session::tokens(&session).await.unwrap().unwrap();
        assert!(sign_in.needs_refresh() && sign_in.refresh_token.is_some());
        assert_eq!(resources(cached(&session).await.unwrap()), ["api://cd"]);
    }

    #[test]
    fn what_entra_said_of_consent_holds_for_those_scopes_and_for_a_while_only() {
        let needed = ConsentNeeded(vec![("Mail.Read".to_owned(), 1_030)]);
        assert!(needed.said_moments_ago("Mail.Read", 1_000));
        assert!(needed.said_moments_ago("Mail.Read", 1_029));
        assert!(!needed.said_moments_ago("Mail.Read", 1_030), "no longer once the while is over");
        assert!(!needed.said_moments_ago("Files.Read", 1_000), "other scopes are asked for");
        assert!(!ConsentNeeded::default().said_moments_ago("Mail.Read", 1_000));
    }

    async fn said(session: &Session) -> Vec<String> {
        let needed: ConsentNeeded = session.get(CONSENT_NEEDED_KEY).await.unwrap().unwrap_or_default();
        needed.0.into_iter().map(|(asked, _)| asked).collect()
    }

    #[tokio::test]
    async fn what_entra_said_is_kept_once_per_scopes_bounded_and_forgotten_when_a_token_comes() {
        let session = Session::new(None, Arc::new(MemoryStore::default()), None);
        let stale = ConsentNeeded(vec![("api://old/x".to_owned(), 1)]);
        remember_consent_needed(&session, stale, "api://a/x".to_owned()).await.unwrap();
        assert_eq!(said(&session).await, ["api://a/x"], "what is over goes");
        let until = session.get::<ConsentNeeded>(CONSENT_NEEDED_KEY).await.unwrap().unwrap().0[0].1;
        let remembered = CONSENT_NEEDED_REMEMBERED.as_secs();
        assert!((unix_now() + remembered - 1..=unix_now() + remembered).contains(&until), "for a while: {until}");
        let current = || async { session.get::<ConsentNeeded>(CONSENT_NEEDED_KEY).await.unwrap().unwrap() };
        remember_consent_needed(&session, current().await, "api://b/x".to_owned()).await.unwrap();
        remember_consent_needed(&session, current().await, "api://a/x".to_owned()).await.unwrap();
        assert_eq!(said(&session).await, ["api://b/x", "api://a/x"], "once per scopes, the latest last");
        for n in 0..MAX_RESOURCE_TOKENS {
            remember_consent_needed(&session, current().await, format!("api://{n}/x")).await.unwrap();
        }
        let kept = said(&session).await;
        assert_eq!(kept.len(), MAX_RESOURCE_TOKENS, "bounded");
        assert_eq!(kept.last().map(String::as_str), Some("api://7/x"), "the newest stay");

        forget_consent_needed(&session, |asked| asked == "api://7/x").await.unwrap();
        assert_eq!(said(&session).await.len(), MAX_RESOURCE_TOKENS - 1);
        assert!(!said(&session).await.contains(&"api://7/x".to_owned()));
        forget_consent_needed(&session, |_| true).await.unwrap();
        assert!(session.get::<ConsentNeeded>(CONSENT_NEEDED_KEY).await.unwrap().is_none(), "nothing left");
    }
}
