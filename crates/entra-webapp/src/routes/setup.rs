//! `/setup`: the URLs to register in Entra for this site, and a warning when the site is reached
//! at another origin than REDIRECT_URI names (the cause of AADSTS50011 and lost sign-ins).

use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::IntoResponse;

use crate::pages::SetupPage;
use crate::site;
use crate::state::AppState;

/// `GET /setup`.
pub async fn setup(State(state): State<AppState>, headers: HeaderMap) -> impl IntoResponse {
    let config = state.client.config();
    let site_origin = site::origin(&headers, state.trust_forwarded_headers);
    let redirect_origin = config.redirect_uri.origin().ascii_serialization();
    let warning = (site_origin != redirect_origin).then(|| {
        format!(
            "This page was reached at {site_origin}, but REDIRECT_URI sends sign-ins back to {redirect_origin}. Users signing in here will land on another site (or Entra answers AADSTS50011). Behind a TLS-terminating proxy such as App Service, set TRUST_FORWARDED_HEADERS=true."
        )
    });
    SetupPage {
        site_origin,
        redirect_uri: config.redirect_uri.to_string(),
        post_logout_redirect_uri: config.post_logout_redirect_uri.to_string(),
        warning,
    }
}
