//! What the sign-in routes' handlers need to answer: the client, the keys that seal pending
//! sign-ins, the app's pages and paths. [`AuthRoutes`](crate::axum::AuthRoutes) builds it and
//! hands it to the handlers as their state.

use std::sync::Arc;
use std::time::Duration;

use axum::http::HeaderMap;
use axum::response::Response;

use crate::axum::after_sign_out::AfterSignOut;
use crate::axum::error_page::{ErrorPage, ErrorPageRenderer, PageContext, SignOutPageRenderer, request_id};
use crate::axum::extract::AuthContext;
use crate::axum::front_channel::EntraSessionIndex;
use crate::axum::pending::PendingCookies;
use crate::axum::policy::AccessDeniedRenderer;
use crate::client::EntraClient;
use crate::error::SignInError;
use crate::keys::SessionKeys;
use crate::return_to::LocalPath;

/// Every setting of the sign-in routes; see the methods of `AuthRoutes` for what each means.
#[derive(Clone)]
pub(crate) struct RouteConfig {
    pub(crate) client: Arc<EntraClient>,
    pub(crate) keys: Arc<SessionKeys>,
    pub(crate) error_page: ErrorPageRenderer,
    pub(crate) sign_out_page: SignOutPageRenderer,
    pub(crate) access_denied_page: AccessDeniedRenderer,
    // Shared strings: the context cloned into every request holds them.
    pub(crate) login_path: Arc<str>,
    pub(crate) logout_path: Arc<str>,
    pub(crate) session_cookie_name: Arc<str>,
    pub(crate) session_idle_timeout: Duration,
    pub(crate) session_max_lifetime: Duration,
    pub(crate) front_channel: Option<Arc<dyn EntraSessionIndex>>,
    pub(crate) after_sign_out: LocalPath,
}

impl RouteConfig {
    /// Whether the site is served over https (the redirect URI's scheme): cookies get `Secure`
    /// and the `__Host-` prefix.
    pub(crate) fn https(&self) -> bool {
        self.client.config().redirect_uri.scheme() == "https"
    }

    /// What the extractors need, put in every request by the layer.
    pub(crate) fn context(&self) -> AuthContext {
        AuthContext {
            client: self.client.clone(),
            login_path: self.login_path.clone(),
            logout_path: self.logout_path.clone(),
            access_denied_page: self.access_denied_page.clone(),
            error_page: self.error_page.clone(),
        }
    }

    pub(crate) fn after_sign_out_cookie(&self) -> AfterSignOut {
        AfterSignOut { secure: self.https() }
    }

    pub(crate) fn pending_cookies(&self) -> PendingCookies<'_> {
        PendingCookies {
            sealer: &self.keys.pending_sign_ins,
            secure: self.https(),
            lifetime: self.client.config().pending_sign_in_lifetime,
        }
    }

    /// The error page for a failed sign-in or sign-out, logged and counted.
    pub(crate) fn fail(&self, error: SignInError, headers: &HeaderMap) -> Response {
        let request_id = request_id(headers);
        if error.status().is_server_error() {
            tracing::error!(%request_id, kind = error.kind(), error = %error, "sign-in failed");
        } else {
            tracing::warn!(%request_id, kind = error.kind(), error = %error, "sign-in refused");
        }
        metrics::counter!("entra_sign_ins_failed_total", "reason" => error.kind()).increment(1);
        let config = self.client.config();
        let context = PageContext {
            redirect_uri: config.redirect_uri.as_str(),
            pending_sign_in_lifetime: config.pending_sign_in_lifetime,
            request_id,
        };
        (self.error_page)(ErrorPage::for_error(&error, &context))
    }
}
