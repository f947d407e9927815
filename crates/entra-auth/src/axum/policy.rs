//! Who may come in once signed in, as data: an [`AccessPolicy`] of app roles, groups and
//! tenants, the [`AccessDenied`] a user who does not meet it gets, and what the 403 page shows.

use std::sync::Arc;

use axum::response::Response;
use uuid::Uuid;

use crate::axum::session::SignedInUser;

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
