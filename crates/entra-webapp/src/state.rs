//! What handlers share.

use std::sync::Arc;

use entra_auth::EntraClient;
use entra_auth::axum::{AccessDenied, AccessPolicy, AuthRoutes, SignedInUser};

use crate::sessions::AppSessionStore;

/// What handlers share: one reference-counted [`Shared`], so the clone axum makes for every
/// request is one atomic increment.
#[derive(Clone)]
pub struct AppState(Arc<Shared>);

impl AppState {
    /// The state of an app made of `shared`.
    pub fn new(shared: Shared) -> Self {
        Self(Arc::new(shared))
    }

    /// Whether `user` may reach `path` of the app behind: the access policy, and in proxy mode
    /// the path rules of `path` (`None`: every rule).
    pub fn may_reach(&self, path: Option<&str>, user: &SignedInUser) -> Result<(), AccessDenied> {
        let rules = self.proxy.as_ref().map(|proxy| proxy.config.path_rules.as_slice()).unwrap_or_default();
        crate::config::may_reach(&self.policy, rules, path, user)
    }
}

impl std::ops::Deref for AppState {
    type Target = Shared;

    fn deref(&self) -> &Shared {
        &self.0
    }
}

/// The app's shared parts.
pub struct Shared {
    /// The relying party.
    pub client: Arc<EntraClient>,
    /// The sign-in routes (for sign-in paths with a return address).
    pub auth: AuthRoutes,
    /// The session store.
    pub store: AppSessionStore,
    /// `TRUST_FORWARDED_HEADERS`.
    pub trust_forwarded_headers: bool,
    /// ALLOWED_TENANTS/ROLES/GROUPS, checked on every signed-in page.
    pub policy: Arc<AccessPolicy>,
    /// Proxy mode: the app behind (`UPSTREAM_URL`).
    pub proxy: Option<crate::proxy::forward::Proxy>,
    /// Groups of callers with access tokens that had too many to list (proxy mode).
    pub(crate) caller_groups: crate::proxy::caller_groups::CallerGroups,
    /// Identity headers already built (the proxy and the forward-auth endpoint).
    pub(crate) identity_headers: crate::proxy::identity::IdentityHeaderCache,
    /// The downstream API `/downstream` calls as the user.
    pub downstream: Option<entra_auth::axum::DownstreamApi>,
}
