//! What handlers share.

use std::sync::Arc;

use entra_auth::EntraClient;
use entra_auth::axum::{AccessPolicy, AuthRoutes};

use crate::sessions::AppSessionStore;

/// What handlers share; cheap to clone.
#[derive(Clone)]
pub struct AppState {
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
    pub proxy: Option<Arc<crate::proxy::forward::Proxy>>,
    /// The downstream API `/downstream` calls as the user.
    pub downstream: Option<entra_auth::axum::DownstreamApi>,
}
