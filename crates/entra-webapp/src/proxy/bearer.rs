//! Callers with an access token instead of a session: another application (a SPA, a mobile app,
//! a daemon) calling the app behind as an API, with `Authorization: Bearer` as App Service
//! authentication accepts it, when `PROXY_BEARER_CLIENTS` allows them. entra-auth checks the
//! token ([`entra_auth::EntraClient::verify_bearer`]); this says what the proxy answers. A request
//! carrying a token is judged by the token alone: the session cookie, which the browser adds by
//! itself, is not read, so neither is a page of another origin's request refused for it.

use axum::http::StatusCode;
use axum::http::header::{self, HeaderValue};
use axum::response::{IntoResponse, Response};
use entra_auth::axum::{Requirement, SignedInUser};
use entra_auth::{AccessTokenClaims, BearerError, BearerPolicy};

use crate::state::AppState;

/// Who `token` says calls, as the proxy, `/.auth/me` and forward auth judge it: the token checked
/// by entra-auth, then its groups overage resolved (see `caller_groups.rs`). `Err` is the answer
/// to a token refused, or to a caller whose groups cannot be had where the access policy needs
/// them (the access policy, or a path rule of `path`, the path asked for; `None`: every rule);
/// where anyone may come (`may_be_anonymous`) either only means nobody, `Ok(None)`.
pub(crate) async fn caller(
    state: &AppState,
    token: &str,
    policy: &BearerPolicy,
    may_be_anonymous: bool,
    path: Option<&str>,
) -> Result<Option<(SignedInUser, AccessTokenClaims)>, Response> {
    let claims = match state.client.verify_bearer(token, policy).await {
        Ok(claims) => claims,
        Err(error) if may_be_anonymous && error.is_refusal() => return Ok(None),
        Err(error) => return Err(refused(&error)),
    };
    let mut user = SignedInUser::from_access_token(&claims);
    if claims.has_groups_overage() {
        match state.caller_groups.of(&state.client, claims.tid, claims.oid).await {
            Ok(groups) => {
                user.memberships.groups = groups.to_vec();
                user.memberships.groups_from_graph = true;
            }
            Err(error) => {
                tracing::warn!(error = %error, "a caller's groups (overage) could not be read from Graph");
                // Without them a group requirement cannot be decided: not a refusal.
                let undecided =
                    matches!(state.may_reach(path, &user), Err(denied) if denied.requirement == Requirement::Group);
                match (undecided, may_be_anonymous) {
                    (true, true) => return Ok(None),
                    (true, false) => return Err(groups_unavailable()),
                    (false, _) => {}
                }
            }
        }
    }
    Ok(Some((user, claims)))
}

/// The answer to a request whose token was not accepted: 401 with RFC 6750's `invalid_token`
/// (a fixed description per reason: the token's own text never goes back into a header), or 503
/// when no token can be checked now.
pub(crate) fn refused(error: &BearerError) -> Response {
    if !error.is_refusal() {
        tracing::warn!(error = %error, "access tokens cannot be checked");
        let headers = [(header::CACHE_CONTROL, "no-store"), (header::RETRY_AFTER, "5")];
        return (StatusCode::SERVICE_UNAVAILABLE, headers, "Access tokens cannot be checked now; try again shortly.\n")
            .into_response();
    }
    tracing::debug!(error = %error, "access token refused");
    let description = match error {
        BearerError::Expired => "the access token has expired",
        BearerError::NotYetValid => "the access token is not valid yet",
        BearerError::WrongAudience => "the access token is for another audience than this app",
        BearerError::WrongTenant(_) => "the access token comes from a tenant this app does not accept",
        BearerError::ClientNotAllowed(_) => "the calling application may not call this app",
        _ => "the access token is not valid for this app",
    };
    let challenge = format!("Bearer error=\"invalid_token\", error_description=\"{description}\"");
    let mut response =
        (StatusCode::UNAUTHORIZED, [(header::CACHE_CONTROL, "no-store")], format!("{description}.\n")).into_response();
    if let Ok(value) = HeaderValue::from_str(&challenge) {
        response.headers_mut().insert(header::WWW_AUTHENTICATE, value);
    }
    response
}

/// The answer to a caller whose user has not consented to this app calling on with their rights
/// (the token `PROXY_ACCESS_TOKEN_SCOPES` names): 403, RFC 6750's `insufficient_scope`; the
/// calling client must ask the user (or an admin) for that consent.
pub(crate) fn consent_needed() -> Response {
    let description = "the user has not consented to this app calling on with their rights";
    let challenge = format!("Bearer error=\"insufficient_scope\", error_description=\"{description}\"");
    let mut response =
        (StatusCode::FORBIDDEN, [(header::CACHE_CONTROL, "no-store")], format!("{description}.\n")).into_response();
    if let Ok(value) = HeaderValue::from_str(&challenge) {
        response.headers_mut().insert(header::WWW_AUTHENTICATE, value);
    }
    response
}

/// The answer to a caller whose groups (overage) Graph could not give, where the access policy
/// requires a group: 503, not a refusal (the log says why: most often the app lacks the
/// `GroupMember.Read.All` application permission).
fn groups_unavailable() -> Response {
    let headers = [(header::CACHE_CONTROL, "no-store"), (header::RETRY_AFTER, "30")];
    let body = "The caller's group memberships cannot be checked now; try again later.\n";
    (StatusCode::SERVICE_UNAVAILABLE, headers, body).into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_refusal_says_why_in_a_fixed_challenge_and_unavailable_keys_are_a_503() {
        let challenge = |error: BearerError| {
            let response = refused(&error);
            assert_eq!(response.status(), StatusCode::UNAUTHORIZED, "{error}");
            response.headers()[header::WWW_AUTHENTICATE].to_str().unwrap().to_owned()
        };
        let says = |description: &str| format!("Bearer error=\"invalid_token\", error_description=\"{description}\"");
        for (error, description) in [
            (BearerError::Expired, "the access token has expired"),
            (BearerError::NotYetValid, "the access token is not valid yet"),
            (BearerError::WrongAudience, "the access token is for another audience than this app"),
            (
                BearerError::WrongTenant(uuid::Uuid::nil()),
                "the access token comes from a tenant this app does not accept",
            ),
            (BearerError::ClientNotAllowed("c\"x".into()), "the calling application may not call this app"),
            // The issuer the token names never reaches the header.
            (BearerError::WrongIssuer("https://evil.example/\"".into()), "the access token is not valid for this app"),
        ] {
            assert_eq!(challenge(error), says(description));
        }
        let unavailable = refused(&BearerError::Unavailable("the tenant is unreachable".into()));
        assert_eq!(unavailable.status(), StatusCode::SERVICE_UNAVAILABLE);
        assert!(unavailable.headers().get(header::WWW_AUTHENTICATE).is_none());
    }
}
