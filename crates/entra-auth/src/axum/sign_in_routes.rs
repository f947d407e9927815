//! `GET /login` (start a sign-in) and `GET {callback}` (finish it; with nothing to finish, the
//! landing after sign-out).

use axum::extract::{RawQuery, State};
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Redirect, Response};
use tower_sessions::Session;

use crate::axum::own_cookies::with_cookies;
use crate::axum::resource_tokens;
use crate::axum::route_config::RouteConfig;
use crate::axum::session;
use crate::error::SignInError;
use crate::pending_sign_in::PendingSignIn;
use crate::return_to::LocalPath;
use crate::sign_in_options::{SignInOptions, resource_of};
use crate::token_endpoint::EntraError;

fn query_pairs(raw: Option<&str>) -> Vec<(String, String)> {
    url::form_urlencoded::parse(raw.unwrap_or_default().as_bytes()).into_owned().collect()
}

fn first<'a>(pairs: &'a [(String, String)], name: &str) -> Option<&'a str> {
    pairs.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str())
}

/// The hints, prompt and claims challenge `/login` was asked for, each validated.
fn sign_in_options(pairs: &[(String, String)]) -> Result<SignInOptions, SignInError> {
    let mut options = SignInOptions::default();
    if let Some(hint) = first(pairs, "login_hint") {
        options = options.with_login_hint(hint.parse()?);
    }
    if let Some(hint) = first(pairs, "domain_hint") {
        options = options.with_domain_hint(hint.parse()?);
    }
    if let Some(prompt) = first(pairs, "prompt") {
        options = options.with_prompt(prompt.parse()?);
    }
    if let Some(claims) = first(pairs, "claims") {
        options = options.with_claims(claims);
    }
    if let Some(scopes) = first(pairs, "scopes") {
        options = options.with_scopes(scopes.parse()?);
    }
    Ok(options)
}

pub(crate) async fn start_sign_in(
    State(routes): State<RouteConfig>,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
) -> Response {
    let pairs = query_pairs(query.as_deref());
    let return_to = first(&pairs, "return_to").and_then(LocalPath::parse).unwrap_or_else(LocalPath::root);
    let result = async {
        let options = sign_in_options(&pairs)?;
        let (pending, url) = routes.client.begin_sign_in(return_to, &options).await?;
        let cookies = routes.pending_cookies().issue(&headers, &pending).map_err(SignInError::Seal)?;
        Ok::<_, SignInError>((url, cookies))
    }
    .await;
    match result {
        Ok((url, cookies)) => {
            metrics::counter!("entra_sign_ins_started_total").increment(1);
            with_cookies(([("cache-control", "no-store")], Redirect::to(url.as_str())).into_response(), cookies)
        }
        Err(error) => routes.fail(error, &headers),
    }
}

pub(crate) async fn finish_sign_in(
    State(routes): State<RouteConfig>,
    session: Session,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
) -> Response {
    let pairs = query_pairs(query.as_deref());
    if ["state", "code", "error"].iter().all(|name| first(&pairs, name).is_none()) {
        return signed_out_landing(&routes, &headers);
    }
    let state = first(&pairs, "state").filter(|s| !s.is_empty());
    // The pending sign-in is taken out first, and its cookie removed whatever happens next:
    // success, a refusal, or a 5xx from Entra, the JWKS or Graph.
    let (pending, removal) = match state {
        Some(state) => {
            let (pending, removal) = routes.pending_cookies().take(&headers, state);
            (pending, vec![removal])
        }
        None => (None, Vec::new()),
    };
    let outcome = match (state, pending) {
        (None, _) => Err(SignInError::MissingState),
        (Some(_), None) => Err(SignInError::UnknownState),
        (Some(_), Some(pending)) => complete(&routes, &session, &pairs, pending).await,
    };
    let response = match outcome {
        Ok(return_to) => {
            metrics::counter!("entra_sign_ins_completed_total").increment(1);
            Redirect::to(return_to.as_str()).into_response()
        }
        Err(error) => routes.fail(error, &headers),
    };
    with_cookies(response, removal)
}

/// The callback as the post-logout redirect URI: on to the page the sign-out asked for, or the
/// app's after-sign-out page.
fn signed_out_landing(routes: &RouteConfig, headers: &HeaderMap) -> Response {
    let (asked, removal) = routes.after_sign_out_cookie().take(headers);
    let to = asked.unwrap_or_else(|| routes.after_sign_out.clone());
    with_cookies(
        ([("cache-control", "no-store")], Redirect::to(to.as_str())).into_response(),
        removal.into_iter().collect(),
    )
}

/// The callback after the pending sign-in was found: check its age, look at what Entra said,
/// redeem the code and verify the ID token, then cycle the session id.
async fn complete(
    routes: &RouteConfig,
    session: &Session,
    pairs: &[(String, String)],
    pending: PendingSignIn,
) -> Result<LocalPath, SignInError> {
    if pending.is_expired() {
        return Err(SignInError::Expired);
    }
    if let Some(error) = first(pairs, "error") {
        let description = first(pairs, "error_description").unwrap_or_default().to_owned();
        let error_codes = first(pairs, "error_codes")
            .map(|codes| {
                codes.trim_matches(|c| c == '[' || c == ']').split(',').filter_map(|c| c.trim().parse().ok()).collect()
            })
            .unwrap_or_default();
        return Err(SignInError::Denied(EntraError {
            error: error.to_owned(),
            error_description: description,
            error_codes,
            correlation_id: first(pairs, "correlation_id").map(str::to_owned),
        }));
    }
    let code = first(pairs, "code").filter(|c| !c.is_empty()).ok_or(SignInError::MissingCode)?;
    let mut signed_in = routes.client.finish_sign_in(&pending, code).await?;
    if let Some(scopes) = &pending.scopes {
        let resource = scopes.first().map(|scope| resource_of(scope)).unwrap_or_default();
        // Incremental consent by the user already signed in here: the new token joins the
        // session; nothing else changes.
        let current = session::signed_in_user(session).await?;
        if current.is_some_and(|user| user.object_id == signed_in.claims.oid && user.tenant_id == signed_in.claims.tid)
        {
            resource_tokens::keep(session, &resource, signed_in.tokens).await?;
            tracing::info!(oid = %signed_in.claims.oid, %resource, "consent added to the session");
            return Ok(pending.return_to);
        }
        // Anyone else (or nobody) signed in: a new session, whose sign-in token is fetched with
        // the sign-in scopes at first use; the consented one is kept for its resource.
        let consented = signed_in.tokens.clone();
        signed_in.tokens.expire_access_token();
        signed_in.tokens.scopes = routes.client.config().scopes.clone();
        let user = session::complete_sign_in(session, signed_in, routes.session_max_lifetime).await?;
        resource_tokens::keep(session, &resource, consented).await?;
        tracing::info!(oid = %user.object_id, tid = %user.tenant_id, "signed in");
        return Ok(pending.return_to);
    }
    let user = session::complete_sign_in(session, signed_in, routes.session_max_lifetime).await?;
    tracing::info!(oid = %user.object_id, tid = %user.tenant_id, "signed in");
    Ok(pending.return_to)
}
