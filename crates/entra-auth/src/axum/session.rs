//! What entra-auth keeps in a tower-sessions session, in typed buckets under const keys.

use std::sync::LazyLock;
use std::time::Duration;

use secrecy::{ExposeSecret, SecretString};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use tower_sessions::Session;
use tower_sessions::session::Record;
use uuid::Uuid;

use crate::axum::decoded::DecodedCache;
use crate::axum::front_channel::EntraSession;
use crate::client::{EntraClient, SignedIn};
use crate::clock::unix_now;
use crate::error::SignInError;
use crate::graph::Profile;
use crate::memberships::Memberships;
use crate::refresh::RefreshFailure;
use crate::secret::{constant_time_eq, random_token};
use crate::tokens::{TokenSet, TokenTimes};

const USER_KEY: &str = "entra.user";
pub(crate) const TOKENS_KEY: &str = "entra.tokens";
/// The tokens' [`TokenTimes`], written with them.
const TOKEN_TIMES_KEY: &str = "entra.token_times";
const CSRF_KEY: &str = "entra.csrf";
/// Unix seconds of the last request that counted as activity (see [`signed_in_user`]).
const SEEN_KEY: &str = "entra.seen";
/// Signed-in users kept decoded (a few KB each, text and value).
const DECODED_USERS_KEPT: usize = 1024;
/// Users decoded from the text the session keeps them as (see `decoded.rs`).
static DECODED_USERS: LazyLock<DecodedCache<SignedInUser>> = LazyLock::new(|| DecodedCache::new(DECODED_USERS_KEPT));
/// Activity is written down at most this often, so reading pages costs a store write a minute,
/// not one per request.
const TOUCH_INTERVAL_SECS: u64 = 60;

/// The signed-in user, as pages need it. Contains no token.
///
/// As an extractor it requires sign-in: a handler taking `SignedInUser` sends anonymous visitors
/// to sign in and back; one taking `Option<SignedInUser>` serves both.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub struct SignedInUser {
    /// Object id (with `tenant_id`, the user's key).
    pub object_id: Uuid,
    /// Tenant id.
    pub tenant_id: Uuid,
    /// Display name: from Graph when the profile was loaded, else the ID token's `name`.
    pub name: String,
    /// Email to show: Graph `mail` or UPN, else the ID token's `email`, else its
    /// `preferred_username` when that is an address.
    pub email: Option<String>,
    /// The sign-in name (`preferred_username`); mutable, for display and identity headers only.
    #[serde(default)]
    pub username: Option<String>,
    /// The Graph profile at sign-in, when the configuration asked for it.
    #[serde(default)]
    pub profile: Option<Profile>,
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
    /// App roles, groups and directory roles: from sign-in, renewed at every token refresh.
    #[serde(default)]
    pub memberships: Memberships,
}

impl SignedInUser {
    /// Notes whose request this is on `span`, in its `oid` and `tid` fields (the user's object
    /// and tenant ids: pseudonymous, no name or address), so that the request's log lines say who
    /// made it; a span without those fields is left as it is. The extractors and
    /// [`require_access`](crate::axum::require_access) do it for the request span an app puts in
    /// the request's extensions (a `tracing::Span`, with `oid` and `tid` declared
    /// `tracing::field::Empty`): the span current in a handler may be a layer's own (tower-sessions
    /// opens one), not the request's.
    pub fn record_in(&self, span: &tracing::Span) {
        span.record("oid", tracing::field::display(self.object_id));
        span.record("tid", tracing::field::display(self.tenant_id));
    }

    /// Who calls with an accepted access token (see [`EntraClient::verify_bearer`]), for the
    /// access policy and identity headers: a user (delegated) or an application (app-only, named
    /// by its client id). No session: no `sid`, no profile, no end but the token's.
    pub fn from_access_token(claims: &crate::AccessTokenClaims) -> Self {
        let username = claims.preferred_username.clone().or_else(|| claims.upn.clone());
        let name = claims.name.clone().or_else(|| username.clone()).or_else(|| claims.client_id().map(str::to_owned));
        Self {
            object_id: claims.oid,
            tenant_id: claims.tid,
            name: name.unwrap_or_default(),
            email: username.clone().filter(|name| name.contains('@')),
            username,
            profile: None,
            sid: None,
            login_hint: None,
            issuer: claims.iss.clone(),
            // Kept out of the value: a cache keyed by the caller (identity headers) would see
            // every new token as a new caller.
            session_ends_at: 0,
            memberships: Memberships {
                roles: claims.roles.clone(),
                groups: claims.groups.clone(),
                wids: claims.wids.clone(),
                groups_from_graph: false,
            },
        }
    }

    /// The user a stored session record is signed in as, with the memberships it holds now;
    /// `None` for a record nobody is signed in with. For what outlives the request that checked
    /// the session, such as a proxied WebSocket that must close once its user is no longer let in.
    pub fn of_record(record: &Record) -> Option<Self> {
        record.data.get(USER_KEY).and_then(|value| decode_bucket(value).ok())
    }

    fn from_sign_in(signed_in: &SignedIn, max_lifetime: Duration) -> Self {
        let claims = &signed_in.claims;
        let profile = signed_in.profile.clone();
        let name = profile
            .as_ref()
            .and_then(|profile| profile.display_name.clone())
            .or_else(|| claims.name.clone())
            .or_else(|| claims.preferred_username.clone())
            .unwrap_or_default();
        let email = profile
            .as_ref()
            .and_then(|profile| profile.email().map(str::to_owned))
            .or_else(|| claims.email.clone())
            .or_else(|| claims.preferred_username.clone().filter(|name| name.contains('@')));
        Self {
            object_id: claims.oid,
            tenant_id: claims.tid,
            name,
            email,
            username: claims.preferred_username.clone(),
            profile,
            sid: claims.sid.clone(),
            login_hint: claims.login_hint.clone(),
            issuer: claims.iss.clone(),
            session_ends_at: unix_now().saturating_add(max_lifetime.as_secs()),
            memberships: signed_in.memberships.clone(),
        }
    }
}

/// What a session store may know about a stored record, to index it for front-channel logout and
/// to expire it by its sign-in's absolute end, without knowing how entra-auth lays records out.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct RecordFacts {
    /// The Entra session the record is signed in with (front-channel logout names it).
    pub entra_session: Option<EntraSession>,
    /// Unix seconds when its sign-in ends at the latest, whatever its idle expiry says.
    pub ends_at: Option<u64>,
}

impl RecordFacts {
    /// The facts of `record`; all `None` for a record nobody is signed in with.
    pub fn of(record: &Record) -> Self {
        let Some(Ok(user)) = record.data.get(USER_KEY).map(decode_bucket::<UserFacts>) else {
            return Self::default();
        };
        fn text(value: &Option<Value>) -> Option<&str> {
            value.as_ref().and_then(Value::as_str).filter(|value| !value.is_empty())
        }
        let entra_session = match (text(&user.issuer), text(&user.sid)) {
            (Some(issuer), Some(sid)) => Some(EntraSession { issuer: issuer.to_owned(), sid: sid.to_owned() }),
            _ => None,
        };
        // A record from before `session_ends_at` existed reads 0: over, for the store as for
        // `signed_in_user`.
        let ends_at = user.session_ends_at.as_ref().and_then(Value::as_u64);
        Self { entra_session, ends_at }
    }
}

/// The fields of the user bucket [`RecordFacts`] reads. The stores ask on every load, so the
/// rest of the user's JSON is skipped rather than built.
#[derive(Deserialize)]
struct UserFacts {
    issuer: Option<Value>,
    sid: Option<Value>,
    session_ends_at: Option<Value>,
}

/// A bucket kept as its JSON text (see [`insert_bucket`]), or in the object form records written
/// before had.
fn decode_bucket<T: DeserializeOwned>(value: &Value) -> serde_json::Result<T> {
    match value {
        Value::String(text) => serde_json::from_str(text),
        object => T::deserialize(object),
    }
}

fn store_error(err: tower_sessions::session::Error) -> SignInError {
    SignInError::Session(err)
}

/// Reads a bucket of the session (see [`decode_bucket`]).
async fn get_bucket<T: DeserializeOwned>(session: &Session, key: &str) -> Result<Option<T>, SignInError> {
    let Some(value) = session.get_value(key).await.map_err(store_error)? else { return Ok(None) };
    decode_bucket(&value).map(Some).map_err(|err| store_error(err.into()))
}

/// Keeps `value` as its JSON text: every request clones the record and reads the user and the
/// tokens, and one string clones and parses with far fewer allocations than a tree of values.
async fn insert_bucket<T: Serialize>(session: &Session, key: &str, value: &T) -> Result<(), SignInError> {
    let text = serde_json::to_string(value).map_err(|err| store_error(err.into()))?;
    session.insert_value(key, Value::String(text)).await.map_err(store_error)?;
    Ok(())
}

/// Records a completed sign-in and gives the session a new id (against session fixation).
pub(crate) async fn complete_sign_in(
    session: &Session,
    signed_in: SignedIn,
    max_lifetime: Duration,
) -> Result<SignedInUser, SignInError> {
    let user = SignedInUser::from_sign_in(&signed_in, max_lifetime);
    session.cycle_id().await.map_err(store_error)?;
    insert_bucket(session, USER_KEY, &user).await?;
    store_tokens(session, &signed_in.tokens).await?;
    session.insert(CSRF_KEY, random_token(32).expose_secret()).await.map_err(store_error)?;
    session.insert(SEEN_KEY, unix_now()).await.map_err(store_error)?;
    Ok(user)
}

/// The signed-in user, if any. A session past its absolute lifetime is destroyed here, whatever
/// the store's expiry says; a live one is marked active (at most once a minute), which slides its
/// idle expiry. Sessions without a user are never written: anonymous requests cost no storage.
pub(crate) async fn signed_in_user(session: &Session) -> Result<Option<SignedInUser>, SignInError> {
    let Some(user) = session.get_value(USER_KEY).await.map_err(store_error)? else { return Ok(None) };
    let user = match &user {
        Value::String(text) => DECODED_USERS.decode(text).map(|user| SignedInUser::clone(&user)),
        object => SignedInUser::deserialize(object),
    }
    .map_err(|err| store_error(err.into()))?;
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

/// The token set of the signed-in user (to show when the access token expires; never send it).
pub async fn tokens(session: &Session) -> Result<Option<TokenSet>, SignInError> {
    get_bucket(session, TOKENS_KEY).await
}

/// Stores the token set (at sign-in, after a refresh), with its times beside it.
pub(crate) async fn store_tokens(session: &Session, tokens: &TokenSet) -> Result<(), SignInError> {
    insert_bucket(session, TOKENS_KEY, tokens).await?;
    insert_bucket(session, TOKEN_TIMES_KEY, &TokenTimes::of(tokens)).await
}

/// The times of the stored tokens: from their own bucket, or from the tokens in a session
/// stored before they had one.
async fn token_times(session: &Session) -> Result<Option<TokenTimes>, SignInError> {
    match get_bucket(session, TOKEN_TIMES_KEY).await? {
        Some(times) => Ok(Some(times)),
        None => get_bucket(session, TOKENS_KEY).await,
    }
}

/// The CSRF token for the sign-out form (created on first use).
pub(crate) async fn csrf_token(session: &Session) -> Result<SecretString, SignInError> {
    if let Some(token) = session.get::<String>(CSRF_KEY).await.map_err(store_error)? {
        return Ok(SecretString::from(token));
    }
    let token = random_token(32);
    session.insert(CSRF_KEY, token.expose_secret()).await.map_err(store_error)?;
    Ok(token)
}

/// Whether `presented` is this session's CSRF token.
pub(crate) async fn csrf_matches(session: &Session, presented: &str) -> Result<bool, SignInError> {
    let expected: Option<String> = session.get(CSRF_KEY).await.map_err(store_error)?;
    Ok(expected.is_some_and(|expected| constant_time_eq(&expected, presented)))
}

/// Destroys the session server-side: the old cookie no longer means anything.
pub(crate) async fn destroy(session: &Session) -> Result<(), SignInError> {
    session.flush().await.map_err(store_error)
}

/// Why no access token could be had.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum AccessTokenError {
    /// Nobody is signed in.
    #[error("not signed in")]
    NotSignedIn,
    /// The user must sign in again (refresh token dead, interaction required), or Entra could
    /// not be asked right now.
    #[error(transparent)]
    Refresh(#[from] RefreshFailure),
    /// The session store failed.
    #[error(transparent)]
    Session(#[from] SignInError),
    /// The route is not behind [`AuthRoutes::layer`](crate::axum::AuthRoutes::layer).
    #[error("the route is not behind AuthRoutes::layer")]
    NotConfigured,
}

/// A valid access token for the signed-in user: the cached one while it has time left, else a
/// refreshed one (the rotated refresh token is stored, the old one discarded, and the user's
/// memberships renewed from the refresh). The [`AccessToken`](crate::axum::AccessToken)
/// extractor does the same for a handler.
pub async fn access_token(client: &EntraClient, session: &Session) -> Result<SecretString, AccessTokenError> {
    fresh_tokens(client, session).await.map(|tokens| tokens.access_token)
}

/// The signed-in user's token set with a valid access token (refreshed as [`access_token`] does).
pub(crate) async fn fresh_tokens(client: &EntraClient, session: &Session) -> Result<TokenSet, AccessTokenError> {
    let user: SignedInUser = get_bucket(session, USER_KEY).await?.ok_or(AccessTokenError::NotSignedIn)?;
    fresh(client, session, user).await.map(|(tokens, _)| tokens)
}

/// The signed-in user with memberships no older than the access token: refreshes first when the
/// tokens are due, so a membership change reaches authorization within one token lifetime.
pub async fn signed_in_user_refreshed(
    client: &EntraClient,
    session: &Session,
) -> Result<Option<SignedInUser>, AccessTokenError> {
    let Some(user) = signed_in_user(session).await? else { return Ok(None) };
    if token_times(session).await?.is_some_and(|times| !times.needs_refresh()) {
        return Ok(Some(user));
    }
    fresh(client, session, user).await.map(|(_, user)| Some(user))
}

async fn fresh(
    client: &EntraClient,
    session: &Session,
    mut user: SignedInUser,
) -> Result<(TokenSet, SignedInUser), AccessTokenError> {
    let tokens = tokens(session).await?.ok_or(AccessTokenError::NotSignedIn)?;
    let Some(refreshed) = client.fresh_tokens(&tokens, user.object_id, user.tenant_id).await? else {
        return Ok((tokens, user));
    };
    store_tokens(session, &refreshed.tokens).await?;
    if let Some(memberships) = refreshed.memberships
        && memberships != user.memberships
    {
        tracing::info!(oid = %user.object_id, "memberships changed at refresh");
        user.memberships = memberships;
        insert_bucket(session, USER_KEY, &user).await?;
    }
    Ok((refreshed.tokens, user))
}

/// Forgets the access token so the next use refreshes (an API refused it).
pub async fn expire_access_token(session: &Session) -> Result<(), SignInError> {
    if let Some(mut tokens) = tokens(session).await? {
        tokens.expire_access_token();
        store_tokens(session, &tokens).await?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use tower_sessions::MemoryStore;

    use super::*;

    #[tokio::test]
    async fn token_times_follow_the_stored_tokens_and_older_sessions_read_them_from_the_tokens() {
        let session = Session::new(None, Arc::new(MemoryStore::default()), None);
        let in_an_hour = unix_now() + 3600;
        // A session stored before the times had a bucket of their own.
        session.insert(TOKENS_KEY, TokenSet::for_tests(in_an_hour, None)).await.unwrap();
        assert!(!token_times(&session).await.unwrap().unwrap().needs_refresh());
        session.insert(TOKENS_KEY, TokenSet::for_tests(0, None)).await.unwrap();
        assert!(token_times(&session).await.unwrap().unwrap().needs_refresh());

        let mut stored = TokenSet::for_tests(in_an_hour, None);
        store_tokens(&session, &stored).await.unwrap();
        assert!(!token_times(&session).await.unwrap().unwrap().needs_refresh());
        stored.expire_access_token();
        store_tokens(&session, &stored).await.unwrap();
        assert!(token_times(&session).await.unwrap().unwrap().needs_refresh(), "the times were stored with the tokens");
        // The times' own bucket is what is read.
        session.insert(TOKENS_KEY, TokenSet::for_tests(in_an_hour, None)).await.unwrap();
        assert!(token_times(&session).await.unwrap().unwrap().needs_refresh());
    }
}
