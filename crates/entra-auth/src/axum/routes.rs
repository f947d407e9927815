//! The sign-in routes (`GET /login`, `GET {callback}`, `GET` and `POST /logout`), built by
//! [`AuthRoutes`], and the layer that puts sessions and the extractors' context around an app.

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::{Form, RawQuery, State};
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::get;
use secrecy::ExposeSecret;
use serde::Deserialize;
use tower::Layer;
use tower_http::add_extension::{AddExtension, AddExtensionLayer};
use tower_sessions::cookie::SameSite;
use tower_sessions::{Expiry, Session, SessionManagerLayer, SessionStore};

use crate::axum::after_sign_out::{self, AfterSignOut};
use crate::axum::authorization::default_access_denied_page;
use crate::axum::error_page::{
    ErrorPage, ErrorPageRenderer, PageContext, SignOutForm, SignOutPageRenderer, default_error_page,
    default_sign_out_page,
};
use crate::axum::extract::{AuthContext, DEFAULT_LOGIN_PATH};
use crate::axum::front_channel::{self, EntraSessionIndex};
use crate::axum::own_cookies::with_cookies;
use crate::axum::pending::PendingCookies;
use crate::axum::policy::{AccessDenied, AccessDeniedPage, AccessDeniedRenderer};
use crate::axum::resource_tokens;
use crate::axum::session::{self, SignedInUser};
use crate::client::EntraClient;
use crate::error::SignInError;
use crate::keys::SessionKeys;
use crate::pending_sign_in::PendingSignIn;
use crate::return_to::LocalPath;
use crate::sign_in_options::{ResourceScopes, SignInOptions, resource_of};
use crate::token_endpoint::EntraError;

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
    client: Arc<EntraClient>,
    keys: Arc<SessionKeys>,
    error_page: ErrorPageRenderer,
    sign_out_page: SignOutPageRenderer,
    access_denied_page: AccessDeniedRenderer,
    // Shared strings: the context cloned into every request holds them.
    login_path: Arc<str>,
    logout_path: Arc<str>,
    session_cookie_name: Arc<str>,
    session_idle_timeout: Duration,
    session_max_lifetime: Duration,
    front_channel: Option<Arc<dyn EntraSessionIndex>>,
    after_sign_out: LocalPath,
}

impl AuthRoutes {
    /// Routes for `client`, with plain default pages, `/login` and `/logout`, the callback at the
    /// redirect URI's path, sessions idle for 8 hours and signed in for 24 at most, and pending
    /// sign-in cookies sealed with a random per-process key (see [`Self::session_keys`]).
    pub fn new(client: Arc<EntraClient>) -> Self {
        Self {
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
        }
    }

    /// Seals pending sign-in cookies with keys derived from the app's secret(s): needed when
    /// several instances serve one site, or for sign-ins in progress to survive a restart.
    pub fn session_keys(mut self, keys: Arc<SessionKeys>) -> Self {
        self.keys = keys;
        self
    }

    /// Starts sign-in at `path` (a route path such as `/auth/sign-in`).
    pub fn login_path(mut self, path: impl Into<String>) -> Self {
        self.login_path = path.into().into();
        self
    }

    /// Signs out at `path` (a route path such as `/auth/sign-out`).
    pub fn logout_path(mut self, path: impl Into<String>) -> Self {
        self.logout_path = path.into().into();
        self
    }

    /// Names the session cookie `name` (`__Host-{name}` over https) instead of `session`: in front
    /// of another app, so as not to collide with its own cookies.
    pub fn session_cookie_name(mut self, name: impl Into<String>) -> Self {
        self.session_cookie_name = name.into().into();
        self
    }

    /// Whether a cookie of this name is one of ours (the session cookie, a pending sign-in, the
    /// page to land on after sign-out): a proxy must not pass them on.
    pub fn is_own_cookie(&self, name: &str) -> bool {
        let name = name.strip_prefix("__Host-").unwrap_or(name);
        name == &*self.session_cookie_name
            || name.starts_with(crate::axum::pending::UNPREFIXED_NAME_START)
            || name == after_sign_out::UNPREFIXED_NAME
    }

    /// Where the browser lands after signing out when the sign-out named no page (`return_to`):
    /// the root unless set (a proxy whose root needs sign-in shows a signed-out page instead).
    /// Entra brings the browser back to the post-logout redirect URI; when that is the callback
    /// (the default), the callback sends it on here.
    pub fn after_sign_out(mut self, path: LocalPath) -> Self {
        self.after_sign_out = path;
        self
    }

    /// Renders failures in the app's own look (the words come in the [`ErrorPage`]).
    pub fn error_page(mut self, render: impl Fn(ErrorPage) -> Response + Send + Sync + 'static) -> Self {
        self.error_page = Arc::new(render);
        self
    }

    /// Renders the sign-out confirmation page in the app's own look.
    pub fn sign_out_page(mut self, render: impl Fn(SignOutForm) -> Response + Send + Sync + 'static) -> Self {
        self.sign_out_page = Arc::new(render);
        self
    }

    /// Renders the 403 page of [`require_access`](crate::axum::require_access) in the app's look.
    pub fn access_denied_page(mut self, render: impl Fn(AccessDeniedPage) -> Response + Send + Sync + 'static) -> Self {
        self.access_denied_page = Arc::new(render);
        self
    }

    /// Ends a session after this long without a request.
    pub fn session_idle_timeout(mut self, timeout: Duration) -> Self {
        self.session_idle_timeout = timeout;
        self
    }

    /// Ends a sign-in after this long, however active the user is.
    pub fn session_max_lifetime(mut self, lifetime: Duration) -> Self {
        self.session_max_lifetime = lifetime;
        self
    }

    /// Serves front-channel logout at the logout path (`GET ?sid=&iss=`), ending sessions found
    /// through `index` (usually the session store).
    pub fn front_channel_logout(mut self, index: Arc<dyn EntraSessionIndex>) -> Self {
        self.front_channel = Some(index);
        self
    }

    /// The client these routes sign in with.
    pub fn client(&self) -> &Arc<EntraClient> {
        &self.client
    }

    /// Where to send someone to sign in and come back to `return_to` (a claims challenge to
    /// satisfy rides along).
    pub fn sign_in_path(&self, return_to: &LocalPath, claims: Option<&str>) -> LocalPath {
        crate::axum::extract::sign_in_path(&self.login_path, return_to, claims)
    }

    /// Where to send someone to sign out and land on `return_to` once Entra has signed them out
    /// too (`{logout}?return_to=...`: the confirmation page, whose form carries it).
    pub fn sign_out_path(&self, return_to: &LocalPath) -> LocalPath {
        let query =
            url::form_urlencoded::Serializer::new(String::new()).append_pair("return_to", return_to.as_str()).finish();
        LocalPath::parse(&format!("{}?{query}", self.logout_path)).unwrap_or_else(LocalPath::root)
    }

    /// Where to send a signed-in user to consent to `scopes` and come back to `return_to`.
    pub fn consent_path(&self, scopes: &ResourceScopes, return_to: &LocalPath) -> LocalPath {
        crate::axum::extract::consent_path(&self.login_path, scopes, return_to)
    }

    /// Where to send someone to sign in with another account and come back to `return_to`.
    pub fn switch_account_path(&self, return_to: &LocalPath) -> LocalPath {
        crate::axum::authorization::switch_account_path(&self.login_path, return_to)
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
        crate::axum::authorization::deny(&self.context(), session, user, denied, return_to).await
    }

    fn context(&self) -> AuthContext {
        AuthContext {
            client: self.client.clone(),
            login_path: self.login_path.clone(),
            logout_path: self.logout_path.clone(),
            access_denied_page: self.access_denied_page.clone(),
            error_page: self.error_page.clone(),
        }
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
            .route(&login, get(start_sign_in))
            .route(&callback, get(finish_sign_in))
            .route(&logout, get(sign_out_page).post(sign_out))
            .with_state(self.clone())
    }

    /// The paths [`Self::router`] serves: sign-in, its callback (the redirect URI's path) and
    /// sign-out. For an app that decides before routing whether a request is for these routes.
    pub fn paths(&self) -> [String; 3] {
        let callback = self.client.config().redirect_uri.path().to_owned();
        [self.login_path.to_string(), callback, self.logout_path.to_string()]
    }

    /// Sessions in `store`, and what the extractors need, around every route it wraps. The session
    /// cookie is `HttpOnly`, `SameSite=Lax`, and `Secure` with the `__Host-` prefix when the
    /// redirect URI is https.
    pub fn layer<Store: SessionStore + Clone>(&self, store: Store) -> AuthLayer<Store> {
        let https = self.client.config().redirect_uri.scheme() == "https";
        let idle = i64::try_from(self.session_idle_timeout.as_secs()).unwrap_or(i64::MAX);
        let sessions = SessionManagerLayer::new(store)
            .with_name(if https {
                format!("__Host-{}", self.session_cookie_name)
            } else {
                self.session_cookie_name.to_string()
            })
            .with_http_only(true)
            .with_secure(https)
            .with_same_site(SameSite::Lax)
            .with_path("/")
            .with_expiry(Expiry::OnInactivity(tower_sessions::cookie::time::Duration::seconds(idle)));
        AuthLayer { sessions, context: AddExtensionLayer::new(self.context()) }
    }

    fn after_sign_out_cookie(&self) -> AfterSignOut {
        AfterSignOut { secure: self.client.config().redirect_uri.scheme() == "https" }
    }

    fn pending_cookies(&self) -> PendingCookies<'_> {
        let config = self.client.config();
        PendingCookies {
            sealer: &self.keys.pending_sign_ins,
            secure: config.redirect_uri.scheme() == "https",
            lifetime: config.pending_sign_in_lifetime,
        }
    }

    fn fail(&self, error: SignInError, headers: &HeaderMap) -> Response {
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
            request_id: &request_id,
        };
        (self.error_page)(ErrorPage::for_error(&error, &context))
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

/// The request id an app's request-id layer set (`x-request-id`), or `-`.
fn request_id(headers: &HeaderMap) -> String {
    headers.get("x-request-id").and_then(|v| v.to_str().ok()).unwrap_or("-").to_owned()
}

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

async fn start_sign_in(State(routes): State<AuthRoutes>, headers: HeaderMap, RawQuery(query): RawQuery) -> Response {
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

async fn finish_sign_in(
    State(routes): State<AuthRoutes>,
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
fn signed_out_landing(routes: &AuthRoutes, headers: &HeaderMap) -> Response {
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
    routes: &AuthRoutes,
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

#[derive(Deserialize)]
struct SignOutFields {
    #[serde(default)]
    csrf_token: String,
    /// Where to land once signed out of Entra too (see `after_sign_out`).
    return_to: Option<String>,
}

async fn sign_out(
    State(routes): State<AuthRoutes>,
    session: Session,
    headers: HeaderMap,
    Form(form): Form<SignOutFields>,
) -> Response {
    let result = async {
        let user = session::signed_in_user(&session).await?;
        let Some(user) = user else {
            // Nobody to sign out here; still end any Entra session the browser may have.
            return routes.client.end_session_url(None).await;
        };
        if !session::csrf_matches(&session, &form.csrf_token).await? {
            return Err(SignInError::BadSignOutForm);
        }
        session::destroy(&session).await?;
        tracing::info!(oid = %user.object_id, "signed out");
        routes.client.end_session_url(user.login_hint.as_deref()).await
    }
    .await;
    match result {
        Ok(url) => {
            // A page asked for by an earlier sign-out that never came back is forgotten.
            let cookie = match form.return_to.as_deref().and_then(LocalPath::parse) {
                Some(path) => Some(routes.after_sign_out_cookie().remember(&path)),
                None => routes.after_sign_out_cookie().take(&headers).1,
            };
            with_cookies(Redirect::to(url.as_str()).into_response(), cookie.into_iter().collect())
        }
        Err(error) => routes.fail(error, &headers),
    }
}

#[derive(Deserialize)]
struct SignOutQuery {
    /// Present when Entra calls our front-channel logout URL.
    sid: Option<String>,
    /// The issuer of that Entra session, when Entra sends it.
    iss: Option<String>,
    /// Where to land after signing out (the form carries it on).
    return_to: Option<String>,
}

/// `GET {logout}`: the sign-out confirmation form (for someone not signed in, the page `return_to`
/// names, if any); or, called by Entra with `sid`, front-channel logout.
async fn sign_out_page(
    State(routes): State<AuthRoutes>,
    session: Session,
    headers: HeaderMap,
    axum::extract::Query(query): axum::extract::Query<SignOutQuery>,
) -> Response {
    if let Some(sid) = query.sid {
        let Some(index) = &routes.front_channel else {
            tracing::warn!("front-channel logout called but not enabled (AuthRoutes::front_channel_logout)");
            return (axum::http::StatusCode::NOT_FOUND, "front-channel logout is not enabled").into_response();
        };
        return front_channel::end_entra_session(&routes.client, index.as_ref(), sid, query.iss.as_deref()).await;
    }
    let form = async {
        let signed_in = session::signed_in_user(&session).await?.is_some();
        let csrf_token =
            if signed_in { session::csrf_token(&session).await?.expose_secret().to_owned() } else { String::new() };
        Ok::<_, SignInError>(SignOutForm {
            signed_in,
            csrf_token,
            action: routes.logout_path.to_string(),
            sign_in_path: routes.login_path.to_string(),
            return_to: query.return_to.as_deref().and_then(LocalPath::parse).map(|path| path.as_str().to_owned()),
        })
    }
    .await;
    match form {
        // Nobody to sign out here: straight on to the page the sign-out would have ended on.
        Ok(SignOutForm { signed_in: false, return_to: Some(path), .. }) => Redirect::to(&path).into_response(),
        Ok(form) => (routes.sign_out_page)(form),
        Err(error) => routes.fail(error, &headers),
    }
}

/// The CSRF token a sign-out form must carry (as the `csrf_token` field); created on first use.
/// Pages other than the confirmation page that show a sign-out button need it.
pub async fn sign_out_csrf_token(session: &Session) -> Result<String, SignInError> {
    session::csrf_token(session).await.map(|token| token.expose_secret().to_owned())
}
