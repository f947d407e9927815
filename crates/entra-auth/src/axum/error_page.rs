//! What a user sees when sign-in or sign-out fails, and the sign-out confirmation form: the words
//! (plain language, no setting names: the app adds its own), and plain default pages an app
//! replaces with its own look through [`AuthRoutes`](crate::axum::AuthRoutes).

use std::sync::Arc;
use std::time::Duration;

use askama::Template;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{Html, IntoResponse, Response};

use crate::aadsts;
use crate::error::SignInError;
use crate::graph::GraphError;
use crate::id_token::IdTokenError;
use crate::jwks::JwksError;
use crate::token_endpoint::{EntraError, TokenError};

/// Renders an error page; the app supplies one in its own look.
pub type ErrorPageRenderer = Arc<dyn Fn(ErrorPage) -> Response + Send + Sync>;
/// Renders the sign-out confirmation page (`GET` on the sign-out path).
pub type SignOutPageRenderer = Arc<dyn Fn(SignOutForm) -> Response + Send + Sync>;

/// The words of an error page.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct ErrorPage {
    /// HTTP status.
    pub status: StatusCode,
    /// [`SignInError::kind`], or the app's own kind.
    pub kind: &'static str,
    /// A short headline.
    pub title: String,
    /// What happened, in plain language.
    pub message: String,
    /// What the user can do now.
    pub hint: String,
    /// The request id to quote (`-` when the app sets none).
    pub request_id: String,
    /// The AADSTS code Entra answered with, if that is what failed (lets the app name the
    /// setting to fix).
    pub entra_code: Option<u32>,
}

/// What the sign-out confirmation page shows.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct SignOutForm {
    /// Whether someone is signed in (else there is nothing to confirm).
    pub signed_in: bool,
    /// The hidden `csrf_token` field the form must post; empty when nobody is signed in.
    pub csrf_token: String,
    /// Where the form posts (the sign-out path).
    pub action: String,
    /// Where to sign in again.
    pub sign_in_path: String,
    /// The page to land on once signed out (`return_to` of the sign-out path), for the form's
    /// hidden `return_to` field; `None` for the app's after-sign-out page.
    pub return_to: Option<String>,
}

/// The request id an app's request-id layer set (`x-request-id`), or `-`: error pages quote it.
pub(crate) fn request_id(headers: &HeaderMap) -> &str {
    headers.get("x-request-id").and_then(|v| v.to_str().ok()).unwrap_or("-")
}

/// What the words of a failure depend on besides the error.
pub(crate) struct PageContext<'a> {
    pub(crate) redirect_uri: &'a str,
    pub(crate) pending_sign_in_lifetime: Duration,
    pub(crate) request_id: &'a str,
}

impl ErrorPage {
    /// A page with these words.
    pub fn new(
        status: StatusCode,
        kind: &'static str,
        title: impl Into<String>,
        message: impl Into<String>,
        hint: impl Into<String>,
        request_id: impl Into<String>,
    ) -> Self {
        Self {
            status,
            kind,
            title: title.into(),
            message: message.into(),
            hint: hint.into(),
            request_id: request_id.into(),
            entra_code: None,
        }
    }

    /// The page for a failed sign-in, sign-out or refresh. AADSTS50011 names `redirect_uri`, the
    /// exact URI to register.
    pub(crate) fn for_error(error: &SignInError, context: &PageContext<'_>) -> Self {
        let sign_in_again = "Sign in again.".to_owned();
        let try_again = "Try again in a minute.".to_owned();
        let entra_explanation = |error: &EntraError| {
            error
                .code()
                .or_else(|| aadsts::code_in_description(&error.error_description))
                .and_then(|code| aadsts::explain(code, context.redirect_uri))
        };
        let (title, message, hint) = match error {
            SignInError::ProviderUnavailable(_) => (
                "Microsoft sign-in is unreachable",
                "This app cannot reach Microsoft Entra ID right now, so nobody can sign in.".to_owned(),
                "Try again in a minute. If it persists, the app's operator should check its network and its authority (login host and tenant).".to_owned(),
            ),
            SignInError::MissingState | SignInError::UnknownState => (
                "This sign-in cannot be completed",
                "The sign-in response does not belong to a sign-in in progress in this browser: it was already used, was altered, took longer than a sign-in may take, or comes from another browser.".to_owned(),
                sign_in_again,
            ),
            SignInError::Expired => (
                "This sign-in expired",
                format!(
                    "More than {} passed between starting the sign-in and coming back.",
                    describe(context.pending_sign_in_lifetime)
                ),
                sign_in_again,
            ),
            SignInError::Denied(error) => (
                if error.error == "access_denied" { "Sign-in was cancelled" } else { "Microsoft could not sign you in" },
                entra_explanation(error).unwrap_or_else(|| format!("Microsoft Entra ID answered '{}'.", error.error)),
                sign_in_again,
            ),
            SignInError::MissingCode => (
                "This sign-in cannot be completed",
                "The sign-in response carries no authorization code.".to_owned(),
                sign_in_again,
            ),
            SignInError::Token(TokenError::Rejected(error)) => (
                "Microsoft refused to complete the sign-in",
                entra_explanation(error).unwrap_or_else(|| format!("The token endpoint answered '{error}'.")),
                if error.error == "invalid_grant" {
                    sign_in_again
                } else {
                    "The app's operator must fix its configuration.".to_owned()
                },
            ),
            SignInError::Token(_) | SignInError::MissingIdToken => (
                "Microsoft sign-in is not answering properly",
                "The app could not redeem the sign-in with Microsoft Entra ID.".to_owned(),
                try_again,
            ),
            SignInError::InvalidIdToken(IdTokenError::Key(JwksError::Unavailable { .. })) => (
                "Microsoft sign-in is not answering properly",
                "The app could not fetch Microsoft Entra ID's signing keys to verify the sign-in.".to_owned(),
                try_again,
            ),
            SignInError::InvalidIdToken(error) => (
                "The sign-in could not be verified",
                format!("The identity token was rejected: {error}. You have not been signed in."),
                sign_in_again,
            ),
            SignInError::Graph(GraphError::Throttled { .. }) => (
                "Microsoft Graph is busy",
                "Microsoft Graph is limiting requests and did not recover in time.".to_owned(),
                try_again,
            ),
            SignInError::Graph(_) => {
                ("Your profile could not be loaded", "Microsoft Graph did not return your profile or your group memberships.".to_owned(), try_again)
            }
            SignInError::RefreshUnavailable(_) => (
                "Microsoft sign-in is not answering properly",
                "Your session needs a fresh access token and Microsoft Entra ID could not provide one right now.".to_owned(),
                try_again,
            ),
            SignInError::Session(_) => {
                ("Sessions are unavailable", "The app cannot reach its session store right now.".to_owned(), try_again)
            }
            SignInError::Credential(_) => (
                "Microsoft sign-in is not possible right now",
                "This app could not obtain the credential it proves its identity with (its managed identity, certificate or workload identity token).".to_owned(),
                "Try again in a minute. If it persists, the app's operator should check the app's credential.".to_owned(),
            ),
            SignInError::Seal(_) => (
                "Sign-in could not start",
                "The app could not protect the sign-in it was starting.".to_owned(),
                try_again,
            ),
            SignInError::TenantNotAllowed(_) => (
                "This account cannot use this app",
                "Accounts of your organization may not sign in to this app. You have not been signed in.".to_owned(),
                "Use an account of an organization this app serves.".to_owned(),
            ),
            SignInError::InvalidHint(error) => (
                "This sign-in link is not valid",
                format!("The sign-in request was refused: {error}."),
                sign_in_again,
            ),
            SignInError::BadSignOutForm => (
                "Sign-out could not be confirmed",
                "The sign-out form was stale or did not come from this app.".to_owned(),
                "Open the sign-out page again and press Sign out.".to_owned(),
            ),
        };
        let entra_code = match error {
            SignInError::Denied(error) | SignInError::Token(TokenError::Rejected(error)) => {
                error.code().or_else(|| aadsts::code_in_description(&error.error_description))
            }
            _ => None,
        };
        Self { entra_code, ..Self::new(error.status(), error.kind(), title, message, hint, context.request_id) }
    }

    /// The page for `error` as the sign-in routes would word it, for apps that meet a
    /// [`SignInError`] in their own handlers.
    pub fn for_sign_in_error(error: &SignInError, request_id: impl Into<String>) -> Self {
        let request_id = request_id.into();
        let context = PageContext {
            redirect_uri: "",
            pending_sign_in_lifetime: crate::pending_sign_in::PENDING_SIGN_IN_LIFETIME,
            request_id: &request_id,
        };
        Self::for_error(error, &context)
    }
}

/// "10 minutes", "90 seconds".
fn describe(duration: Duration) -> String {
    let seconds = duration.as_secs();
    match seconds {
        60 => "1 minute".to_owned(),
        s if s >= 60 && s % 60 == 0 => format!("{} minutes", s / 60),
        1 => "1 second".to_owned(),
        s => format!("{s} seconds"),
    }
}

#[derive(Template)]
#[template(path = "error.html")]
struct DefaultErrorPage<'a> {
    page: &'a ErrorPage,
}

#[derive(Template)]
#[template(path = "sign_out.html")]
struct DefaultSignOutPage<'a> {
    form: &'a SignOutForm,
}

fn html(status: StatusCode, rendered: askama::Result<String>) -> Response {
    match rendered {
        Ok(body) => (status, [("cache-control", "no-store")], Html(body)).into_response(),
        Err(err) => {
            tracing::error!(error = %err, "page failed to render");
            (StatusCode::INTERNAL_SERVER_ERROR, "Something went wrong.").into_response()
        }
    }
}

/// The plain error page [`AuthRoutes`](crate::axum::AuthRoutes) uses unless told otherwise.
pub fn default_error_page(page: ErrorPage) -> Response {
    html(page.status, DefaultErrorPage { page: &page }.render())
}

/// The plain sign-out confirmation page [`AuthRoutes`](crate::axum::AuthRoutes) uses unless told
/// otherwise.
pub fn default_sign_out_page(form: SignOutForm) -> Response {
    html(StatusCode::OK, DefaultSignOutPage { form: &form }.render())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lifetimes_are_worded_as_people_say_them() {
        assert_eq!(describe(Duration::from_secs(600)), "10 minutes");
        assert_eq!(describe(Duration::from_secs(60)), "1 minute");
        assert_eq!(describe(Duration::from_secs(90)), "90 seconds");
        assert_eq!(describe(Duration::from_secs(1)), "1 second");
    }

    #[test]
    fn the_default_pages_escape_what_they_show() {
        let page = ErrorPage::new(StatusCode::BAD_REQUEST, "test", "<b>title</b>", "<script>x</script>", "hint", "id");
        let html = DefaultErrorPage { page: &page }.render().unwrap();
        assert!(html.contains("&#60;script&#62;x&#60;/script&#62;") && !html.contains("<script>"), "{html}");
        assert!(html.contains("&#60;b&#62;title&#60;/b&#62;"), "{html}");
        let form = SignOutForm {
            signed_in: true,
            csrf_token: "\"><script>".to_owned(),
            action: "/logout".to_owned(),
            sign_in_path: "/login".to_owned(),
            return_to: Some("/bye?x=\"><script>".to_owned()),
        };
        let html = DefaultSignOutPage { form: &form }.render().unwrap();
        assert!(html.contains("value=\"&#34;&#62;&#60;script&#62;\"") && !html.contains("<script>"), "{html}");
        assert!(html.contains("name=\"return_to\" value=\"/bye?x=&#34;&#62;&#60;script&#62;\""), "{html}");
        assert_eq!(default_error_page(page).status(), StatusCode::BAD_REQUEST);
    }
}
