//! What entra-auth keeps in a tower-sessions session, in typed buckets under const keys.

use std::collections::HashMap;
use std::time::Duration;

use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Serialize};
use tower_sessions::Session;
use uuid::Uuid;

use crate::client::{SignedIn, TokenSet, unix_now};
use crate::error::SignInError;
use crate::graph::Profile;
use crate::secret::{constant_time_eq, random_token};

const USER_KEY: &str = "entra.user";
const TOKENS_KEY: &str = "entra.tokens";
const CSRF_KEY: &str = "entra.csrf";
/// Unix seconds of the last request that counted as activity (see [`signed_in_user`]).
const SEEN_KEY: &str = "entra.seen";
/// Activity is written down at most this often, so reading pages costs a store write a minute,
/// not one per request.
const TOUCH_INTERVAL_SECS: u64 = 60;

/// The signed-in user, as pages need it. Contains no token.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct SignedInUser {
    /// Object id (with `tenant_id`, the user's key).
    pub object_id: Uuid,
    /// Tenant id.
    pub tenant_id: Uuid,
    /// Display name from Graph, else from the ID token.
    pub name: String,
    /// Email to show: Graph `mail`, else the UPN.
    pub email: Option<String>,
    /// The Graph profile at sign-in.
    pub profile: Profile,
    /// Entra's session id, for front-channel logout.
    pub sid: Option<String>,
    /// For `logout_hint`.
    pub login_hint: Option<String>,
    /// The ID token's issuer (with `sid`, what front-channel logout names).
    #[serde(default)]
    pub issuer: String,
    /// Unix seconds after which this sign-in is over, however active the user is.
    #[serde(default)]
    pub session_ends_at: u64,
}

impl SignedInUser {
    fn from_sign_in(signed_in: &SignedIn, max_lifetime: Duration) -> Self {
        let claims = &signed_in.claims;
        let profile = signed_in.profile.clone();
        let name = profile
            .display_name
            .clone()
            .or_else(|| claims.name.clone())
            .or_else(|| claims.preferred_username.clone())
            .unwrap_or_default();
        Self {
            object_id: claims.oid,
            tenant_id: claims.tid,
            name,
            email: profile.email().map(str::to_owned).or_else(|| claims.email.clone()),
            profile,
            sid: claims.sid.clone(),
            login_hint: claims.login_hint.clone(),
            issuer: claims.iss.clone(),
            session_ends_at: unix_now().saturating_add(max_lifetime.as_secs()),
        }
    }
}

/// The Entra session (issuer and `sid`) a stored session record is signed in with, if any: lets a
/// session store index records for front-channel logout.
pub fn entra_session_of_record(data: &HashMap<String, serde_json::Value>) -> Option<(&str, &str)> {
    let user = data.get(USER_KEY)?;
    Some((user.get("issuer")?.as_str()?, user.get("sid")?.as_str()?))
}

/// When a stored session record's sign-in ends at the latest (unix seconds): a store expires the
/// record by then whatever its idle expiry says.
pub fn session_end_of_record(data: &HashMap<String, serde_json::Value>) -> Option<u64> {
    data.get(USER_KEY)?.get("session_ends_at")?.as_u64().filter(|end| *end > 0)
}

fn store_error(err: tower_sessions::session::Error) -> SignInError {
    SignInError::Session(err.to_string())
}

/// Records a completed sign-in and gives the session a new id (against session fixation).
pub async fn complete_sign_in(
    session: &Session,
    signed_in: SignedIn,
    max_lifetime: Duration,
) -> Result<SignedInUser, SignInError> {
    let user = SignedInUser::from_sign_in(&signed_in, max_lifetime);
    session.cycle_id().await.map_err(store_error)?;
    session.insert(USER_KEY, &user).await.map_err(store_error)?;
    session.insert(TOKENS_KEY, &signed_in.tokens).await.map_err(store_error)?;
    session.insert(CSRF_KEY, random_token(32).expose_secret()).await.map_err(store_error)?;
    session.insert(SEEN_KEY, unix_now()).await.map_err(store_error)?;
    Ok(user)
}

/// The signed-in user, if any. A session past its absolute lifetime is destroyed here, whatever
/// the store's expiry says; a live one is marked active (at most once a minute), which slides its
/// idle expiry. Sessions without a user are never written: anonymous requests cost no storage.
pub async fn signed_in_user(session: &Session) -> Result<Option<SignedInUser>, SignInError> {
    let Some(user) = session.get::<SignedInUser>(USER_KEY).await.map_err(store_error)? else {
        return Ok(None);
    };
    let now = unix_now();
    if now >= user.session_ends_at {
        tracing::info!(oid = %user.object_id, "session reached its absolute lifetime");
        destroy(session).await?;
        return Ok(None);
    }
    let seen: u64 = session.get(SEEN_KEY).await.map_err(store_error)?.unwrap_or_default();
    if now.saturating_sub(seen) >= TOUCH_INTERVAL_SECS {
        session.insert(SEEN_KEY, now).await.map_err(store_error)?;
    }
    Ok(Some(user))
}

/// The token set of the signed-in user.
pub async fn tokens(session: &Session) -> Result<Option<TokenSet>, SignInError> {
    session.get(TOKENS_KEY).await.map_err(store_error)
}

/// Replaces the token set (after a refresh).
pub async fn store_tokens(session: &Session, tokens: &TokenSet) -> Result<(), SignInError> {
    session.insert(TOKENS_KEY, tokens).await.map_err(store_error)
}

/// The CSRF token for the sign-out form (created on first use).
pub async fn csrf_token(session: &Session) -> Result<SecretString, SignInError> {
    if let Some(token) = session.get::<String>(CSRF_KEY).await.map_err(store_error)? {
        return Ok(SecretString::from(token));
    }
    let token = random_token(32);
    session.insert(CSRF_KEY, token.expose_secret()).await.map_err(store_error)?;
    Ok(token)
}

/// Whether `presented` is this session's CSRF token.
pub async fn csrf_matches(session: &Session, presented: &str) -> Result<bool, SignInError> {
    let expected: Option<String> = session.get(CSRF_KEY).await.map_err(store_error)?;
    Ok(expected.is_some_and(|expected| constant_time_eq(&expected, presented)))
}

/// Destroys the session server-side: the old cookie no longer means anything.
pub async fn destroy(session: &Session) -> Result<(), SignInError> {
    session.flush().await.map_err(store_error)
}

/// Why no access token could be had.
#[derive(Debug, thiserror::Error)]
pub enum AccessTokenError {
    /// Nobody is signed in.
    #[error("not signed in")]
    NotSignedIn,
    /// The user must sign in again (refresh token dead, interaction required).
    #[error(transparent)]
    Refresh(#[from] crate::refresh::RefreshFailure),
    /// The session store failed.
    #[error(transparent)]
    Session(#[from] SignInError),
}

/// A valid Graph access token for the signed-in user: the cached one while it has time left,
/// else a refreshed one (the rotated refresh token is stored, the old one discarded).
pub async fn access_token(
    client: &crate::client::EntraClient,
    session: &Session,
) -> Result<SecretString, AccessTokenError> {
    let tokens = tokens(session).await?.ok_or(AccessTokenError::NotSignedIn)?;
    match client.fresh_tokens(&tokens).await? {
        None => Ok(tokens.access_token),
        Some(fresh) => {
            store_tokens(session, &fresh).await?;
            Ok(fresh.access_token)
        }
    }
}

/// Forgets the access token so the next use refreshes (Graph refused it).
pub async fn expire_access_token(session: &Session) -> Result<(), SignInError> {
    if let Some(mut tokens) = tokens(session).await? {
        tokens.expire_access_token();
        store_tokens(session, &tokens).await?;
    }
    Ok(())
}
