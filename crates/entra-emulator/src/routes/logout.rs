//! `/{tenant}/oauth2/v2.0/logout`: ends the SSO session, tells every client signed in through it
//! (front-channel logout URL) as Entra does, by loading each URL with `sid` and `iss` in an
//! iframe of the signed-out page, and sends the browser back only to a registered URI (after the
//! iframes had a moment to load).

use std::collections::HashMap;
use std::sync::Arc;

use axum::Form;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, header};
use axum::response::{IntoResponse, Response};
use url::Url;

use crate::pages::SignedOutPage;
use crate::routes::sso;
use crate::state::EmulatorState;

pub(crate) async fn logout(
    state: State<Arc<EmulatorState>>,
    tenant: Path<String>,
    headers: HeaderMap,
    Query(params): Query<HashMap<String, String>>,
) -> Response {
    end_session(state, tenant, headers, params).await
}

pub(crate) async fn logout_form(
    state: State<Arc<EmulatorState>>,
    tenant: Path<String>,
    headers: HeaderMap,
    Form(params): Form<HashMap<String, String>>,
) -> Response {
    end_session(state, tenant, headers, params).await
}

async fn end_session(
    State(state): State<Arc<EmulatorState>>,
    Path(tenant): Path<String>,
    headers: HeaderMap,
    params: HashMap<String, String>,
) -> Response {
    if !state.accepts_tenant(&tenant) {
        let error = super::discovery::unknown_tenant(&tenant);
        return crate::pages::ErrorPage::response(error.code, error.message);
    }
    let (ended, clear_cookie) = sso::end(&state, &headers);
    let front_channel_logout_urls = ended
        .as_ref()
        .map(|session| front_channel_urls(&state, &session.sign_in.sid, &session.clients))
        .unwrap_or_default();
    let signed_out = |problem: Option<String>, continue_to: Option<String>| {
        SignedOutPage { problem, front_channel_logout_urls: front_channel_logout_urls.clone(), continue_to }
            .into_response()
    };
    let mut response = match params.get("post_logout_redirect_uri") {
        None => signed_out(None, None),
        Some(uri) if is_registered(&state, uri) => match Url::parse(uri) {
            Ok(mut url) => {
                if let Some(value) = params.get("state") {
                    url.query_pairs_mut().append_pair("state", value);
                }
                if front_channel_logout_urls.is_empty() {
                    crate::pages::found(url.as_str())
                } else {
                    signed_out(None, Some(url.to_string()))
                }
            }
            Err(_) => signed_out(Some("The post_logout_redirect_uri is not a URL.".into()), None),
        },
        Some(uri) => signed_out(
            Some(format!(
                "The post_logout_redirect_uri '{uri}' is not a redirect URI of any application, so you were not sent back to it."
            )),
            None,
        ),
    };
    response.headers_mut().append(header::SET_COOKIE, clear_cookie);
    response
}

/// Entra sends the browser back only to one of an application's redirect URIs.
fn is_registered(state: &EmulatorState, uri: &str) -> bool {
    state.clients().iter().any(|client| client.platform_of(uri).is_some())
}

/// The front-channel logout URL of every client signed in through the ended session, with the
/// `sid` and `iss` parameters Entra adds.
fn front_channel_urls(state: &EmulatorState, sid: &str, client_ids: &std::collections::HashSet<String>) -> Vec<String> {
    state
        .clients()
        .iter()
        .filter(|client| client_ids.contains(&client.client_id))
        .filter_map(|client| Url::parse(client.front_channel_logout_url.as_deref()?).ok())
        .map(|mut url| {
            url.query_pairs_mut().append_pair("sid", sid).append_pair("iss", &state.issuer());
            url.to_string()
        })
        .collect()
}
