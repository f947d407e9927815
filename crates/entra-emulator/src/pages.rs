//! The emulator's HTML pages. Field names and element ids match Entra's real pages (`loginfmt`,
//! `passwd`, `#idSIButton9`, `#idBtn_Accept`, `#idBtn_Back`) so browser automation written for
//! Entra works unchanged.

use askama::Template;
use askama_web::WebTemplate;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};

/// Sign-in: username step, then password step (both fields at once are accepted too).
#[derive(Template, WebTemplate)]
#[template(path = "sign_in.html")]
pub(crate) struct SignInPage {
    pub(crate) action: String,
    pub(crate) ctx: String,
    pub(crate) login_hint: String,
    /// `Some(username)` shows the password step for that user.
    pub(crate) password_step_for: Option<String>,
    pub(crate) error: Option<String>,
    pub(crate) users: Vec<String>,
}

/// The consent prompt.
#[derive(Template, WebTemplate)]
#[template(path = "consent.html")]
pub(crate) struct ConsentPage {
    pub(crate) action: String,
    pub(crate) ctx: String,
    pub(crate) app_name: String,
    pub(crate) username: String,
    pub(crate) scopes: Vec<String>,
}

/// Shown when the emulator cannot safely send the browser back (unknown client, bad redirect URI).
#[derive(Template)]
#[template(path = "error.html")]
pub(crate) struct ErrorPage {
    pub(crate) code: u32,
    pub(crate) message: String,
}

impl ErrorPage {
    pub(crate) fn response(code: u32, message: impl Into<String>) -> Response {
        let page = ErrorPage { code, message: message.into() };
        match page.render() {
            Ok(html) => (StatusCode::BAD_REQUEST, axum::response::Html(html)).into_response(),
            Err(_) => (StatusCode::BAD_REQUEST, format!("AADSTS{code}")).into_response(),
        }
    }
}

/// `response_mode=form_post`: the answer is POSTed to the redirect URI by the browser.
#[derive(Template, WebTemplate)]
#[template(path = "form_post.html")]
pub(crate) struct FormPostPage {
    pub(crate) action: String,
    pub(crate) fields: Vec<(String, String)>,
}

/// After logout when no registered redirect URI was given.
#[derive(Template, WebTemplate)]
#[template(path = "signed_out.html")]
pub(crate) struct SignedOutPage {
    pub(crate) problem: Option<String>,
    /// Loaded in iframes: each client ends its session (front-channel logout).
    pub(crate) front_channel_logout_urls: Vec<String>,
    /// Where the browser goes next, after the iframes had time to load.
    pub(crate) continue_to: Option<String>,
}

/// A `302 Found` redirect, as Entra answers (axum's `Redirect::to` is a 303).
pub(crate) fn found(location: &str) -> Response {
    match axum::http::HeaderValue::from_str(location) {
        Ok(value) => (StatusCode::FOUND, [(axum::http::header::LOCATION, value)]).into_response(),
        Err(_) => ErrorPage::response(50011, "The redirect URI cannot be sent in a Location header."),
    }
}
