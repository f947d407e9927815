//! Who may come in once signed in: an [`AccessPolicy`] of app roles, groups and tenants, checked
//! per request against memberships no older than the access token, and the 403 page a user who
//! does not qualify gets (which requirement failed, sign out, use another account) instead of a
//! redirect loop.

use std::sync::Arc;

use askama::Template;
use axum::extract::{FromRequestParts, Request, State};
use axum::http::StatusCode;
use axum::middleware::Next;
use axum::response::{Html, IntoResponse, Redirect, Response};
use tower_sessions::Session;
use uuid::Uuid;

use crate::axum::error_page::ErrorPage;
use crate::axum::extract::{AuthContext, SignInRequired, sign_in_path};
use crate::axum::session::{self, AccessTokenError, SignedInUser};
use crate::error::SignInError;
use crate::refresh::RefreshFailure;
use crate::return_to::LocalPath;
use crate::secret::random_token;
use crate::sign_in_options::Prompt;

/// Renders the 403 page; the app supplies one in its own look.
pub type AccessDeniedRenderer = Arc<dyn Fn(AccessDeniedPage) -> Response + Send + Sync>;

/// Requirements a signed-in user must meet, each any-of: one of the app roles, one of the groups,
/// one of the tenants. An empty policy lets every signed-in user in.
///
/// ```
/// use entra_auth::axum::AccessPolicy;
/// let policy = AccessPolicy::new()
///     .require_any_role(["Reader", "Admin"])
///     .require_any_group(["5a1e5000-0000-4000-8000-00000000a001"]);
/// assert!(!policy.is_empty());
/// ```
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct AccessPolicy {
    tenants: Vec<Uuid>,
    roles: Vec<String>,
    groups: Vec<String>,
}

/// Which requirement a user failed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Requirement {
    /// The user's tenant is not allowed.
    Tenant,
    /// The user has none of the required app roles.
    Role,
    /// The user is in none of the required groups.
    Group,
}

impl Requirement {
    /// A stable name (`tenant`, `role`, `group`), for pages, logs and metrics.
    pub fn as_str(self) -> &'static str {
        match self {
            Requirement::Tenant => "tenant",
            Requirement::Role => "role",
            Requirement::Group => "group",
        }
    }
}

/// A signed-in user who does not meet a policy, and why.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct AccessDenied {
    /// The requirement that failed.
    pub requirement: Requirement,
    /// What it asks for: tenant ids, role values or group ids.
    pub required: Vec<String>,
}

impl AccessDenied {
    /// What failed, in plain words (role names are shown; group and tenant ids are not).
    pub fn reason(&self) -> String {
        match self.requirement {
            Requirement::Tenant => "Your account's organization is not allowed to use this app.".to_owned(),
            Requirement::Role => {
                format!("This app needs one of these roles, and your account has none: {}.", self.required.join(", "))
            }
            Requirement::Group => {
                "This app is for members of certain groups, and your account is in none of them.".to_owned()
            }
        }
    }
}

impl AccessPolicy {
    /// The empty policy: every signed-in user.
    pub fn new() -> Self {
        Self::default()
    }

    /// Only users of one of these tenants.
    pub fn allow_tenants(mut self, tenants: impl IntoIterator<Item = Uuid>) -> Self {
        self.tenants.extend(tenants);
        self
    }

    /// Only users with at least one of these app roles (role values, compared exactly).
    pub fn require_any_role<I: IntoIterator<Item = S>, S: Into<String>>(mut self, roles: I) -> Self {
        self.roles.extend(roles.into_iter().map(Into::into));
        self
    }

    /// Only members of at least one of these groups (object ids). A groups overage is resolved
    /// through Graph at sign-in and refresh, so users in hundreds of groups are judged right.
    pub fn require_any_group<I: IntoIterator<Item = S>, S: Into<String>>(mut self, groups: I) -> Self {
        self.groups.extend(groups.into_iter().map(Into::into));
        self
    }

    /// Whether the policy lets every signed-in user in.
    pub fn is_empty(&self) -> bool {
        self.tenants.is_empty() && self.roles.is_empty() && self.groups.is_empty()
    }

    /// Whether `user` qualifies; the first failed requirement (tenant, role, group) otherwise.
    pub fn check(&self, user: &SignedInUser) -> Result<(), AccessDenied> {
        let denied = |requirement, required: Vec<String>| Err(AccessDenied { requirement, required });
        if !self.tenants.is_empty() && !self.tenants.contains(&user.tenant_id) {
            return denied(Requirement::Tenant, self.tenants.iter().map(Uuid::to_string).collect());
        }
        let memberships = &user.memberships;
        if !self.roles.is_empty() && !self.roles.iter().any(|role| memberships.has_role(role)) {
            return denied(Requirement::Role, self.roles.clone());
        }
        if !self.groups.is_empty() && !self.groups.iter().any(|group| memberships.in_group(group)) {
            return denied(Requirement::Group, self.groups.clone());
        }
        Ok(())
    }
}

/// What the 403 page shows.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct AccessDeniedPage {
    /// A short headline.
    pub title: String,
    /// Which requirement failed, in plain words.
    pub reason: String,
    /// The failed requirement.
    pub denied: AccessDenied,
    /// Who is signed in.
    pub user_name: String,
    /// The sign-out form's action.
    pub sign_out_path: String,
    /// The hidden `csrf_token` the sign-out form must post.
    pub csrf_token: String,
    /// Sign in with another account (`prompt=select_account`), then back to the page asked for.
    pub switch_account_path: String,
}

#[derive(Template)]
#[template(path = "access_denied.html")]
struct DefaultAccessDeniedPage<'a> {
    page: &'a AccessDeniedPage,
}

/// The plain 403 page [`AuthRoutes`](crate::axum::AuthRoutes) uses unless told otherwise.
pub fn default_access_denied_page(page: AccessDeniedPage) -> Response {
    match (DefaultAccessDeniedPage { page: &page }).render() {
        Ok(body) => (StatusCode::FORBIDDEN, [("cache-control", "no-store")], Html(body)).into_response(),
        Err(err) => {
            tracing::error!(error = %err, "page failed to render");
            (StatusCode::FORBIDDEN, "You do not have access to this page.").into_response()
        }
    }
}

/// `{login}?prompt=select_account&return_to=...`: sign in with another account and come back.
pub(crate) fn switch_account_path(login_path: &str, return_to: &LocalPath) -> LocalPath {
    let mut query = url::form_urlencoded::Serializer::new(String::new());
    query.append_pair("prompt", Prompt::SelectAccount.as_str());
    query.append_pair("return_to", return_to.as_str());
    LocalPath::parse(&format!("{login_path}?{}", query.finish())).unwrap_or_else(LocalPath::root)
}

/// The 403 response for `user`, in the look the app gave [`AuthRoutes`](crate::axum::AuthRoutes).
pub(crate) async fn deny(
    context: &AuthContext,
    session: &Session,
    user: &SignedInUser,
    denied: AccessDenied,
    return_to: &LocalPath,
) -> Response {
    tracing::info!(oid = %user.object_id, tid = %user.tenant_id, requirement = denied.requirement.as_str(), "access denied");
    metrics::counter!("entra_access_denied_total", "requirement" => denied.requirement.as_str()).increment(1);
    // Without a CSRF token the sign-out button cannot work; a fresh random one keeps the page
    // whole (the sign-out then asks again) rather than failing it.
    let csrf_token = match session::csrf_token(session).await {
        Ok(token) => secrecy::ExposeSecret::expose_secret(&token).to_owned(),
        Err(_) => secrecy::ExposeSecret::expose_secret(&random_token(32)).to_owned(),
    };
    let page = AccessDeniedPage {
        title: "You do not have access to this page".to_owned(),
        reason: denied.reason(),
        denied,
        user_name: user.name.clone(),
        sign_out_path: context.logout_path.clone(),
        csrf_token,
        switch_account_path: switch_account_path(&context.login_path, return_to).as_str().to_owned(),
    };
    (context.access_denied_page)(page)
}

/// Middleware for `axum::middleware::from_fn_with_state(Arc::new(policy), require_access)`:
/// anonymous visitors are sent to sign in, signed-in users who do not meet the policy get the
/// 403 page, the others go through. Memberships are renewed first when the tokens are due for a
/// refresh, so removing someone from a group takes effect within one access-token lifetime (and
/// at once for a revoked user, whose refresh fails). Must sit inside
/// [`AuthRoutes::layer`](crate::axum::AuthRoutes::layer).
pub async fn require_access(State(policy): State<Arc<AccessPolicy>>, request: Request, next: Next) -> Response {
    let (mut parts, body) = request.into_parts();
    let Some(context) = parts.extensions.get::<AuthContext>().cloned() else {
        return SignInRequired::NotConfigured.into_response();
    };
    let Ok(session) = Session::from_request_parts(&mut parts, &()).await else {
        return SignInRequired::NotConfigured.into_response();
    };
    let here = parts.uri.path_and_query().and_then(|pq| LocalPath::parse(pq.as_str())).unwrap_or_else(LocalPath::root);
    let user = match session::signed_in_user_refreshed(&context.client, &session).await {
        Ok(Some(user)) => user,
        Ok(None) | Err(AccessTokenError::NotSignedIn | AccessTokenError::Refresh(RefreshFailure::NeedsSignIn(_))) => {
            return Redirect::to(sign_in_path(&context.login_path, &here, None).as_str()).into_response();
        }
        Err(AccessTokenError::Session(_)) => return SignInRequired::SessionUnavailable.into_response(),
        Err(error) => {
            tracing::warn!(error = %error, "cannot renew memberships");
            let request_id = parts.headers.get("x-request-id").and_then(|v| v.to_str().ok()).unwrap_or("-");
            let error = SignInError::RefreshUnavailable(error.to_string());
            return (context.error_page)(ErrorPage::for_sign_in_error(&error, request_id));
        }
    };
    if let Err(denied) = policy.check(&user) {
        return deny(&context, &session, &user, denied, &here).await;
    }
    next.run(Request::from_parts(parts, body)).await
}
