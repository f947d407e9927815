//! What entra-auth keeps in a tower-sessions session, in typed buckets under const keys.

use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Serialize};
use tower_sessions::Session;
use uuid::Uuid;

use crate::client::{PendingSignIn, SignedIn, TokenSet};
use crate::error::SignInError;
use crate::graph::Profile;
use crate::secret::{constant_time_eq, random_token};

const PENDING_KEY: &str = "entra.pending";
const USER_KEY: &str = "entra.user";
const TOKENS_KEY: &str = "entra.tokens";
const CSRF_KEY: &str = "entra.csrf";

/// At most this many sign-ins pending per session (tabs signing in at once); the oldest goes first,
/// so repeated `/login` calls cannot grow a session without bound.
pub const MAX_PENDING_SIGN_INS: usize = 5;

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
}

impl SignedInUser {
    fn from_sign_in(signed_in: &SignedIn) -> Self {
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
        }
    }
}

/// The Entra session id (`sid`) of the user signed in to a stored session record, if any: lets a
/// session store index records by `sid` for front-channel logout.
pub fn sid_of_record(data: &std::collections::HashMap<String, serde_json::Value>) -> Option<&str> {
    data.get(USER_KEY)?.get("sid")?.as_str()
}

#[derive(Default, Serialize, Deserialize)]
struct PendingSignIns(Vec<PendingSignIn>);

fn store_error(err: tower_sessions::session::Error) -> SignInError {
    SignInError::Session(err.to_string())
}

/// Remembers a pending sign-in, dropping expired ones and the oldest beyond the bound.
pub async fn add_pending(session: &Session, pending: PendingSignIn) -> Result<(), SignInError> {
    let mut all: PendingSignIns = session.get(PENDING_KEY).await.map_err(store_error)?.unwrap_or_default();
    all.0.retain(|p| !p.is_expired());
    all.0.push(pending);
    let excess = all.0.len().saturating_sub(MAX_PENDING_SIGN_INS);
    all.0.drain(..excess);
    session.insert(PENDING_KEY, all).await.map_err(store_error)
}

/// Removes and returns the pending sign-in whose state is `state`: it can be used once only.
pub async fn take_pending(session: &Session, state: &str) -> Result<Option<PendingSignIn>, SignInError> {
    let Some(mut all) = session.get::<PendingSignIns>(PENDING_KEY).await.map_err(store_error)? else {
        return Ok(None);
    };
    let Some(index) = all.0.iter().position(|p| constant_time_eq(p.state.expose_secret(), state)) else {
        return Ok(None);
    };
    let pending = all.0.remove(index);
    session.insert(PENDING_KEY, all).await.map_err(store_error)?;
    Ok(Some(pending))
}

/// Records a completed sign-in and gives the session a new id (against session fixation).
pub async fn complete_sign_in(session: &Session, signed_in: SignedIn) -> Result<SignedInUser, SignInError> {
    let user = SignedInUser::from_sign_in(&signed_in);
    session.cycle_id().await.map_err(store_error)?;
    session.insert(USER_KEY, &user).await.map_err(store_error)?;
    session.insert(TOKENS_KEY, &signed_in.tokens).await.map_err(store_error)?;
    session.insert(CSRF_KEY, random_token(32).expose_secret()).await.map_err(store_error)?;
    Ok(user)
}

/// The signed-in user, if any.
pub async fn signed_in_user(session: &Session) -> Result<Option<SignedInUser>, SignInError> {
    session.get(USER_KEY).await.map_err(store_error)
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
