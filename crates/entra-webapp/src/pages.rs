//! The app's pages: askama templates, compile-time checked and HTML-escaped, one layout.

use askama::Template;
use askama_web::WebTemplate;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use entra_auth::axum::{AccessDeniedPage, ErrorPage, SignOutForm, SignedInUser};

use crate::config::OwnRoutes;

/// `/`: a sign-in button, or the welcome with name, email and a sign-out button.
#[derive(Template, WebTemplate)]
#[template(path = "home.html")]
pub struct HomePage {
    pub user: Option<SignedInUser>,
    pub csrf_token: String,
}

/// `GET /logout`: the confirmation form (entra-auth serves the route; this is its look).
#[derive(Template, WebTemplate)]
#[template(path = "sign_out.html")]
pub struct SignOutPage {
    pub signed_in: bool,
    pub csrf_token: String,
    /// Where to land once signed out (the form's hidden `return_to`).
    pub return_to: Option<String>,
    /// Where the form posts (the sign-out route).
    pub action: String,
    /// Where "Sign in" goes once signed out.
    pub sign_in_path: String,
}

/// Renders entra-auth's sign-out confirmation in the app's layout.
pub fn sign_out_response(form: SignOutForm) -> Response {
    let SignOutForm { signed_in, csrf_token, return_to, action, sign_in_path, .. } = form;
    SignOutPage { signed_in, csrf_token, return_to, action, sign_in_path }.into_response()
}

/// Any failure a user sees.
#[derive(Template)]
#[template(path = "error.html")]
pub struct ErrorTemplate {
    pub status: u16,
    pub title: String,
    pub message: String,
    pub hint: String,
    pub request_id: String,
    /// Where the page's sign-in button goes: sign in again, or pick another account when this
    /// one is not allowed.
    pub sign_in_path: String,
    pub sign_in_label: &'static str,
}

/// The app setting an operator must fix for this failure, if it is one of ours.
fn setting_to_fix(page: &ErrorPage) -> Option<&'static str> {
    match (page.kind, page.entra_code) {
        ("provider_unavailable", _) => Some("AUTHORITY_HOST and TENANT_ID"),
        ("credential", _) => Some(
            "MANAGED_IDENTITY_CLIENT_ID (and that identity is assigned to the web app) or AZURE_FEDERATED_TOKEN_FILE",
        ),
        (_, Some(700027)) => Some(
            "CLIENT_CERTIFICATE_PATH or CLIENT_CERTIFICATE_THUMBPRINT (the certificate uploaded to the app registration)",
        ),
        (_, Some(70021 | 700211 | 700212 | 700213)) => {
            Some("MANAGED_IDENTITY_CLIENT_ID (and the app registration's federated credential for it)")
        }
        (_, Some(7000215 | 7000222)) => Some("CLIENT_SECRET"),
        (_, Some(700016)) => Some("CLIENT_ID and TENANT_ID"),
        (_, Some(50011)) => Some("REDIRECT_URI (or the app registration's redirect URIs)"),
        _ => None,
    }
}

/// Renders an error page with its status (the library words it; the app names its settings).
pub fn error_response(page: ErrorPage, routes: OwnRoutes) -> Response {
    let status = page.status;
    let hint = match setting_to_fix(&page) {
        Some(setting) => format!("{} Operator: check the app setting {setting}.", page.hint),
        None => page.hint,
    };
    let (sign_in_path, sign_in_label) = match page.kind {
        "tenant_not_allowed" => (format!("{}?prompt=select_account", routes.sign_in()), "Use another account"),
        _ => (routes.sign_in().to_owned(), "Sign in again"),
    };
    let template = ErrorTemplate {
        status: status.as_u16(),
        title: page.title,
        message: page.message,
        hint,
        request_id: page.request_id,
        sign_in_path,
        sign_in_label,
    };
    match template.render() {
        Ok(html) => (status, [("cache-control", "no-store")], axum::response::Html(html)).into_response(),
        Err(err) => {
            tracing::error!(error = %err, "error page failed to render");
            (StatusCode::INTERNAL_SERVER_ERROR, "Something went wrong.").into_response()
        }
    }
}

/// `/profile`: the live Graph profile, and the roles and groups the app decides access by.
#[derive(Template, WebTemplate)]
#[template(path = "profile.html")]
pub struct ProfilePage {
    pub profile: entra_auth::Profile,
    pub memberships: entra_auth::Memberships,
    pub token_note: String,
    /// A downstream API is configured (link to `/downstream`).
    pub downstream: bool,
}

/// The 403 page of a signed-in user who does not meet ALLOWED_TENANTS/ROLES/GROUPS.
#[derive(Template)]
#[template(path = "access_denied.html")]
pub struct AccessDeniedTemplate {
    pub page: AccessDeniedPage,
}

/// Renders entra-auth's access-denied page in the app's layout (403).
pub fn access_denied_response(page: AccessDeniedPage) -> Response {
    match (AccessDeniedTemplate { page }).render() {
        Ok(html) => {
            (StatusCode::FORBIDDEN, [("cache-control", "no-store")], axum::response::Html(html)).into_response()
        }
        Err(err) => {
            tracing::error!(error = %err, "access-denied page failed to render");
            (StatusCode::FORBIDDEN, "You do not have access to this page.").into_response()
        }
    }
}

/// `/setup`: the URLs to register, as this request sees the site.
#[derive(Template, WebTemplate)]
#[template(path = "setup.html")]
pub struct SetupPage {
    pub site_origin: String,
    pub redirect_uri: String,
    pub post_logout_redirect_uri: String,
    pub warning: Option<String>,
}

/// `/mail`: the subjects of the user's most recent messages.
#[derive(Template, WebTemplate)]
#[template(path = "mail.html")]
pub struct MailPage {
    pub subjects: Vec<String>,
}

/// `/downstream`: what the downstream API answered.
#[derive(Template, WebTemplate)]
#[template(path = "downstream.html")]
pub struct DownstreamPage {
    pub scopes: String,
    pub answer: String,
}
