//! `/{tenant}/oauth2/v2.0/logout`: ends the SSO session, tells every client signed in through it
//! (front-channel logout URL), and sends the browser back only to a registered URI.

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
    if let Some(session) = &ended {
        notify_clients(&state, &session.sign_in.sid, &session.clients).await;
    }
    let mut response = match params.get("post_logout_redirect_uri") {
        None => SignedOutPage { problem: None }.into_response(),
        Some(uri) if is_registered(&state, uri) => match Url::parse(uri) {
            Ok(mut url) => {
                if let Some(value) = params.get("state") {
                    url.query_pairs_mut().append_pair("state", value);
                }
                crate::pages::found(url.as_str())
            }
            Err(_) => SignedOutPage { problem: Some("The post_logout_redirect_uri is not a URL.".into()) }.into_response(),
        },
        Some(uri) => SignedOutPage {
            problem: Some(format!(
                "The post_logout_redirect_uri '{uri}' is not registered for any application, so you were not sent back to it."
            )),
        }
        .into_response(),
    };
    response.headers_mut().append(header::SET_COOKIE, clear_cookie);
    response
}

fn is_registered(state: &EmulatorState, uri: &str) -> bool {
    state
        .clients()
        .iter()
        .any(|client| client.post_logout_redirect_uris.iter().any(|registered| registered == uri))
}

/// Entra loads each client's front-channel logout URL in an iframe; the emulator calls it directly
/// (same `sid` and `iss` parameters), which needs no script in its pages.
async fn notify_clients(state: &EmulatorState, sid: &str, client_ids: &std::collections::HashSet<String>) {
    for client in state.clients().iter().filter(|c| client_ids.contains(&c.client_id)) {
        let Some(logout_url) = &client.front_channel_logout_url else { continue };
        let Ok(mut url) = Url::parse(logout_url) else { continue };
        url.query_pairs_mut().append_pair("sid", sid).append_pair("iss", &state.issuer());
        if let Err(err) = state.http.get(url.as_str()).send().await {
            tracing::warn!(client = %client.client_id, error = %err, "front-channel logout call failed");
        }
    }
}
