//! [`AuthRoutes`]: the sign-in routes (`GET /login`, `GET {callback}`, `GET` and `POST /logout`),
//! configured, and the layer that puts sessions and the extractors' context around an app. The
//! handlers are in `sign_in_routes.rs` and `sign_out_routes.rs`.

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::response::Response;
use axum::routing::get;
use tower::Layer;
use tower_http::add_extension::{AddExtension, AddExtensionLayer};
use tower_sessions::cookie::SameSite;
use tower_sessions::{Expiry, Session, SessionManagerLayer, SessionStore};

use crate::axum::after_sign_out;
use crate::axum::authorization::default_access_denied_page;
use crate::axum::error_page::{ErrorPage, SignOutForm, default_error_page, default_sign_out_page};
use crate::axum::extract::{AuthContext, DEFAULT_LOGIN_PATH};
use crate::axum::front_channel::EntraSessionIndex;
use crate::axum::policy::{AccessDenied, AccessDeniedPage};
use crate::axum::route_config::RouteConfig;
use crate::axum::session::SignedInUser;
use crate::axum::sign_in_routes;
use crate::axum::sign_out_routes;
use crate::client::EntraClient;
use crate::keys::SessionKeys;
use crate::return_to::LocalPath;
use crate::sign_in_options::ResourceScopes;

/// The sign-out path unless [`AuthRoutes::logout_path`] says otherwise: `GET` shows the
/// confirmation form (or, with `sid`, is the front-channel logout URL), `POST` signs out.
pub const DEFAULT_LOGOUT_PATH: &str = "/logout";
/// The session cookie's name unless [`AuthRoutes::session_cookie_name`] says otherwise.
pub const DEFAULT_SESSION_COOKIE_NAME: &str = "session";
/// How long a session may sit unused unless [`AuthRoutes::session_idle_timeout`] says otherwise.
pub const DEFAULT_SESSION_IDLE_TIMEOUT: Duration = Duration::from_secs(8 * 60 * 60);
/// How long a sign-in lasts at most unless [`AuthRoutes::session_max_lifetime`] says otherwise.
pub const DEFAULT_SESSION_MAX_LIFETIME: Duration = Duration::from_secs(24 * 60 * 60);

/// The sign-in routes and their session layer. Build with [`AuthRoutes::new`], change defaults
/// with the other methods, then merge [`router`](Self::router) into the app and apply
/// [`layer`](Self::layer) around everything that uses the extractors.
#[derive(Clone)]
pub struct AuthRoutes {
    config: RouteConfig,
}

impl AuthRoutes {
    /// Routes for `client`, with plain default pages, `/login` and `/logout`, the callback at the
    /// redirect URI's path, sessions idle for 8 hours and signed in for 24 at most, and pending
    /// sign-in cookies sealed with a random per-process key (see [`Self::session_keys`]).
    pub fn new(client: Arc<EntraClient>) -> Self {
        Self {
            config: RouteConfig {
                client,
                keys: Arc::new(SessionKeys::from_secrets(&[])),
                error_page: Arc::new(default_error_page),
                sign_out_page: Arc::new(default_sign_out_page),
                access_denied_page: Arc::new(default_access_denied_page),
                login_path: DEFAULT_LOGIN_PATH.into(),
                logout_path: DEFAULT_LOGOUT_PATH.into(),
                session_cookie_name: DEFAULT_SESSION_COOKIE_NAME.into(),
                session_idle_timeout: DEFAULT_SESSION_IDLE_TIMEOUT,
                session_max_lifetime: DEFAULT_SESSION_MAX_LIFETIME,
                front_channel: None,
                after_sign_out: LocalPath::root(),
            },
        }
    }

    /// Seals pending sign-in cookies with keys derived from the app's secret(s): needed when
    /// several instances serve one site, or for sign-ins in progress to survive a restart.
    pub fn session_keys(mut self, keys: Arc<SessionKeys>) -> Self {
        self.config.keys = keys;
        self
    }

    /// Starts sign-in at `path` (a route path such as `/auth/sign-in`).
    pub fn login_path(mut self, path: impl Into<String>) -> Self {
        self.config.login_path = path.into().into();
        self
    }

    /// Signs out at `path` (a route path such as `/auth/sign-out`).
    pub fn logout_path(mut self, path: impl Into<String>) -> Self {
        self.config.logout_path = path.into().into();
        self
    }

    /// Names the session cookie `name` (`__Host-{name}` over https) instead of `session`: in front
    /// of another app, so as not to collide with its own cookies.
    pub fn session_cookie_name(mut self, name: impl Into<String>) -> Self {
        self.config.session_cookie_name = name.into().into();
        self
    }

    /// Whether a cookie of this name is one of ours (the session cookie, a pending sign-in, the
    /// page to land on after sign-out): a proxy must not pass them on.
    pub fn is_own_cookie(&self, name: &str) -> bool {
        let name = name.strip_prefix("__Host-").unwrap_or(name);
        name == &*self.config.session_cookie_name
            || name.starts_with(crate::axum::pending::UNPREFIXED_NAME_START)
            || name == after_sign_out::UNPREFIXED_NAME
    }

    /// Where the browser lands after signing out when the sign-out named no page (`return_to`):
    /// the root unless set (a proxy whose root needs sign-in shows a signed-out page instead).
    /// Entra brings the browser back to the post-logout redirect URI; when that is the callback
    /// (the default), the callback sends it on here.
    pub fn after_sign_out(mut self, path: LocalPath) -> Self {
        self.config.after_sign_out = path;
        self
    }

    /// Renders failures in the app's own look (the words come in the [`ErrorPage`]).
    pub fn error_page(mut self, render: impl Fn(ErrorPage) -> Response + Send + Sync + 'static) -> Self {
        self.config.error_page = Arc::new(render);
        self
    }

    /// Renders the sign-out confirmation page in the app's own look.
    pub fn sign_out_page(mut self, render: impl Fn(SignOutForm) -> Response + Send + Sync + 'static) -> Self {
        self.config.sign_out_page = Arc::new(render);
        self
    }

    /// Renders the 403 page of [`require_access`](crate::axum::require_access) in the app's look.
    pub fn access_denied_page(mut self, render: impl Fn(AccessDeniedPage) -> Response + Send + Sync + 'static) -> Self {
        self.config.access_denied_page = Arc::new(render);
        self
    }

    /// Ends a session after this long without a request.
    pub fn session_idle_timeout(mut self, timeout: Duration) -> Self {
        self.config.session_idle_timeout = timeout;
        self
    }

    /// Ends a sign-in after this long, however active the user is.
    pub fn session_max_lifetime(mut self, lifetime: Duration) -> Self {
        self.config.session_max_lifetime = lifetime;
        self
    }

    /// Serves front-channel logout at the logout path (`GET ?sid=&iss=`), ending sessions found
    /// through `index` (usually the session store).
    pub fn front_channel_logout(mut self, index: Arc<dyn EntraSessionIndex>) -> Self {
        self.config.front_channel = Some(index);
        self
    }

    /// The client these routes sign in with.
    pub fn client(&self) -> &Arc<EntraClient> {
        &self.config.client
    }

    /// Where to send someone to sign in and come back to `return_to` (a claims challenge to
    /// satisfy rides along).
    pub fn sign_in_path(&self, return_to: &LocalPath, claims: Option<&str>) -> LocalPath {
        crate::axum::extract::sign_in_path(&self.config.login_path, return_to, claims)
    }

    /// Where to send someone to sign out and land on `return_to` once Entra has signed them out
    /// too (`{logout}?return_to=...`: the confirmation page, whose form carries it).
    pub fn sign_out_path(&self, return_to: &LocalPath) -> LocalPath {
        let query =
            url::form_urlencoded::Serializer::new(String::new()).append_pair("return_to", return_to.as_str()).finish();
        LocalPath::parse(&format!("{}?{query}", self.config.logout_path)).unwrap_or_else(LocalPath::root)
    }

    /// Where to send a signed-in user to consent to `scopes` and come back to `return_to`.
    pub fn consent_path(&self, scopes: &ResourceScopes, return_to: &LocalPath) -> LocalPath {
        crate::axum::extract::consent_path(&self.config.login_path, scopes, return_to)
    }

    /// Where to send someone to sign in with another account and come back to `return_to`.
    pub fn switch_account_path(&self, return_to: &LocalPath) -> LocalPath {
        crate::axum::authorization::switch_account_path(&self.config.login_path, return_to)
    }

    /// The 403 page for a signed-in `user` a handler found does not meet a policy (what
    /// [`require_access`](crate::axum::require_access) answers), in the app's look.
    pub async fn access_denied(
        &self,
        session: &Session,
        user: &SignedInUser,
        denied: AccessDenied,
        return_to: &LocalPath,
    ) -> Response {
        crate::axum::authorization::deny(&self.config.context(), session, user, denied, return_to).await
    }

    /// The routes, to merge into the app's router. They need [`Self::layer`] around them.
    ///
    /// # Panics
    /// Like [`Router::route`], when a configured path (the redirect URI's included) does not
    /// start with `/` or has a segment starting with `:` or `*`; and merging panics when the app
    /// has a route of its own at one of [`Self::paths`] (check them first to refuse such a
    /// configuration with a message, as entra-webapp does).
    pub fn router<S: Clone + Send + Sync + 'static>(&self) -> Router<S> {
        let [login, callback, logout] = self.paths();
        Router::new()
            .route(&login, get(sign_in_routes::start_sign_in))
            .route(&callback, get(sign_in_routes::finish_sign_in))
            .route(&logout, get(sign_out_routes::sign_out_page).post(sign_out_routes::sign_out))
            .with_state(self.config.clone())
    }

    /// The paths [`Self::router`] serves: sign-in, its callback (the redirect URI's path) and
    /// sign-out. For an app that decides before routing whether a request is for these routes.
    pub fn paths(&self) -> [String; 3] {
        let callback = self.config.client.config().redirect_uri.path().to_owned();
        [self.config.login_path.to_string(), callback, self.config.logout_path.to_string()]
    }

    /// Sessions in `store`, and what the extractors need, around every route it wraps. The session
    /// cookie is `HttpOnly`, `SameSite=Lax`, and `Secure` with the `__Host-` prefix when the
    /// redirect URI is https.
    pub fn layer<Store: SessionStore + Clone>(&self, store: Store) -> AuthLayer<Store> {
        let https = self.config.https();
        let idle = i64::try_from(self.config.session_idle_timeout.as_secs()).unwrap_or(i64::MAX);
        let sessions = SessionManagerLayer::new(store)
            .with_name(if https {
                format!("__Host-{}", self.config.session_cookie_name)
            } else {
                self.config.session_cookie_name.to_string()
            })
            .with_http_only(true)
            .with_secure(https)
            .with_same_site(SameSite::Lax)
            .with_path("/")
            .with_expiry(Expiry::OnInactivity(tower_sessions::cookie::time::Duration::seconds(idle)));
        AuthLayer { sessions, context: AddExtensionLayer::new(self.config.context()) }
    }
}

/// Sessions plus the extractors' context; made by [`AuthRoutes::layer`].
#[derive(Clone)]
pub struct AuthLayer<Store: SessionStore> {
    sessions: SessionManagerLayer<Store>,
    context: AddExtensionLayer<AuthContext>,
}

impl<S, Store: SessionStore + Clone> Layer<S> for AuthLayer<Store> {
    type Service = <SessionManagerLayer<Store> as Layer<AddExtension<S, AuthContext>>>::Service;

    fn layer(&self, inner: S) -> Self::Service {
        self.sessions.layer(self.context.layer(inner))
    }
}
