//! The emulator's own single-sign-on session, behind the `ESTSAUTH` cookie as on Entra: a second
//! sign-in skips the password until the user signs out.

use axum::http::{HeaderMap, HeaderValue, header};
use cookie::{Cookie, SameSite};
use uuid::Uuid;

use crate::state::{EmulatorState, SignIn, SsoSession};

const COOKIE: &str = "ESTSAUTH";

fn session_id(headers: &HeaderMap) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(Cookie::split_parse)
        .filter_map(Result::ok)
        .find(|cookie| cookie.name() == COOKIE)
        .map(|cookie| cookie.value().to_owned())
}

/// The signed-in user of this browser, if any.
pub(crate) fn current(state: &EmulatorState, headers: &HeaderMap) -> Option<SignIn> {
    let id = session_id(headers)?;
    state.grants().sso_sessions.get(&id).map(|session| session.sign_in.clone())
}

/// Starts an SSO session for `user_oid`; returns it and the `Set-Cookie` value.
pub(crate) fn start(state: &EmulatorState, user_oid: Uuid) -> (SignIn, HeaderValue) {
    let id = state.new_secret_value("sso.");
    let sign_in = SignIn { user_oid, sid: Uuid::new_v4().to_string(), auth_time: state.clock.now() };
    state
        .grants()
        .sso_sessions
        .insert(id.clone(), SsoSession { sign_in: sign_in.clone(), clients: Default::default() });
    let cookie = Cookie::build((COOKIE, id))
        .path("/")
        .http_only(true)
        .same_site(SameSite::Lax)
        .secure(state.base_url.scheme() == "https")
        .build();
    (sign_in, header_value(&cookie))
}

/// Ends this browser's SSO session; returns it and the `Set-Cookie` value that clears the cookie.
pub(crate) fn end(state: &EmulatorState, headers: &HeaderMap) -> (Option<SsoSession>, HeaderValue) {
    let ended = session_id(headers).and_then(|id| state.grants().sso_sessions.remove(&id));
    let mut cookie = Cookie::build((COOKIE, "")).path("/").http_only(true).build();
    cookie.make_removal();
    (ended, header_value(&cookie))
}

fn header_value(cookie: &Cookie<'_>) -> HeaderValue {
    // A cookie built from our own ASCII values is always a valid header value.
    HeaderValue::from_str(&cookie.to_string()).unwrap_or_else(|_| HeaderValue::from_static(""))
}
