//! The emulator's live state: the directory, pending sign-ins, codes, refresh tokens, SSO sessions
//! and consents. All in memory; one lock, never held across an await.

use std::collections::{HashMap, HashSet};
use std::sync::{Mutex, MutexGuard, PoisonError, RwLock};

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use url::Url;
use uuid::Uuid;

use crate::clock::Clock;
use crate::config::{ClientRegistration, EmulatorConfig, Platform};
use crate::directory::{DirectoryUser, Memberships};
use crate::faults::Faults;
use crate::keys::KeyRing;

/// How the authorization response travels back to the client.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum ResponseMode {
    Query,
    Fragment,
    FormPost,
}

/// A validated /authorize request, waiting for the user to sign in and consent.
#[derive(Clone, Debug)]
pub(crate) struct AuthorizeRequest {
    pub(crate) client_id: String,
    pub(crate) redirect_uri: String,
    pub(crate) scopes: Vec<String>,
    pub(crate) state: Option<String>,
    pub(crate) nonce: Option<String>,
    pub(crate) code_challenge: Option<String>,
    /// `S256` or `plain`.
    pub(crate) code_challenge_plain: bool,
    pub(crate) response_mode: ResponseMode,
    pub(crate) login_hint: Option<String>,
    /// The `claims` request parameter (claims challenge, client capabilities), as sent.
    pub(crate) claims: Option<String>,
    pub(crate) force_login: bool,
    pub(crate) force_consent: bool,
    pub(crate) created_at: i64,
    /// The authority it was made at (a tenant id, `common` or `organizations`): its code redeems
    /// there only.
    pub(crate) authority: String,
    /// The platform its redirect URI is registered under: how its code must be redeemed.
    pub(crate) platform: Platform,
}

/// Who signed in, in which SSO session.
#[derive(Clone, Debug)]
pub(crate) struct SignIn {
    pub(crate) user_oid: Uuid,
    pub(crate) sid: String,
    pub(crate) auth_time: i64,
}

/// An issued authorization code.
#[derive(Clone, Debug)]
pub(crate) struct CodeGrant {
    pub(crate) request: AuthorizeRequest,
    pub(crate) sign_in: SignIn,
    pub(crate) issued_at: i64,
    pub(crate) redeemed: bool,
}

/// What a refresh token stands for.
#[derive(Clone, Debug)]
pub(crate) struct RefreshGrant {
    pub(crate) issued_at: i64,
    /// The platform of the sign-in it continues (a SPA's must be redeemed cross-origin).
    pub(crate) platform: Platform,
    /// A SPA's refresh tokens expire 24 hours after the sign-in, however often renewed.
    pub(crate) expires_at: Option<i64>,
    /// Authentication contexts the sign-in satisfied: its access tokens carry them.
    pub(crate) auth_contexts: Vec<String>,
    pub(crate) client_id: String,
    pub(crate) scopes: Vec<String>,
    pub(crate) sign_in: SignIn,
    pub(crate) status: RefreshStatus,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum RefreshStatus {
    Active,
    /// Redeemed once already: rotation means every use returns a new one.
    Rotated,
    Revoked,
}

/// The emulator's SSO session, behind its cookie.
#[derive(Clone, Debug)]
pub(crate) struct SsoSession {
    pub(crate) sign_in: SignIn,
    pub(crate) clients: HashSet<String>,
}

#[derive(Debug, Default)]
pub(crate) struct Grants {
    pub(crate) pending: HashMap<String, AuthorizeRequest>,
    pub(crate) codes: HashMap<String, CodeGrant>,
    pub(crate) refresh_tokens: HashMap<String, RefreshGrant>,
    pub(crate) sso_sessions: HashMap<String, SsoSession>,
    /// (user, client, scope) triples the user agreed to.
    pub(crate) consents: HashSet<(Uuid, String, String)>,
    /// Client assertion `jti`s seen, with when: replays are refused.
    pub(crate) used_assertion_ids: HashMap<String, i64>,
    /// Every token, code and secret value handed out, for leak checks in tests (capped).
    pub(crate) issued: Vec<String>,
    /// Values handed out since the last prune.
    since_prune: u32,
    /// Access tokens issued to clients declaring the `cp1` capability (continuous access
    /// evaluation): Graph refuses them at once when their user is revoked.
    pub(crate) cae_tokens: Vec<CaeToken>,
    /// When each live access token expires by the emulator's clock, by `uti` (the token itself
    /// states wall-clock times): Graph and the API accept only these.
    pub(crate) access_tokens: HashMap<String, i64>,
    /// `uti`s of CAE-capable access tokens whose user was revoked after they were issued.
    pub(crate) revoked_token_ids: HashSet<String>,
    /// When each revoked user was last revoked (the `nbf` their claims challenge asks for).
    pub(crate) revoked_at: HashMap<Uuid, i64>,
}

/// A CAE-capable access token, remembered until it expires.
#[derive(Clone, Debug)]
pub(crate) struct CaeToken {
    pub(crate) user_oid: Uuid,
    pub(crate) token_id: String,
    pub(crate) expires_at: i64,
}

/// How long things are kept once they can no longer be used, so that a replay still gets the
/// precise error (AADSTS54005, a reused refresh token) for a while.
const KEEP_SPENT_SECS: i64 = 24 * 3600;
/// Refresh tokens die after 90 days unused, as Entra's do by default (AADSTS700082).
pub(crate) const REFRESH_TOKEN_LIFETIME_SECS: i64 = 90 * 24 * 3600;
/// Client assertions live at most about 10 minutes: their `jti`s need not be kept longer.
const ASSERTION_MEMORY_SECS: i64 = 3600;
/// Beyond this many recorded values the oldest half is forgotten.
const MAX_ISSUED_RECORDED: usize = 200_000;
/// Prune once per this many values handed out.
const PRUNE_EVERY: u32 = 1024;

impl Grants {
    /// Forgets what can no longer matter: a long-running emulator stays bounded.
    pub(crate) fn prune(&mut self, now: i64, code_lifetime: i64) {
        self.pending.retain(|_, request| now - request.created_at <= 15 * 60);
        self.codes.retain(|_, code| now - code.issued_at <= code_lifetime + KEEP_SPENT_SECS);
        self.refresh_tokens.retain(|_, grant| match grant.status {
            // Kept a day past their death, so a late use gets the precise AADSTS700082.
            RefreshStatus::Active => now - grant.issued_at <= REFRESH_TOKEN_LIFETIME_SECS + KEEP_SPENT_SECS,
            RefreshStatus::Rotated | RefreshStatus::Revoked => now - grant.issued_at <= KEEP_SPENT_SECS,
        });
        self.used_assertion_ids.retain(|_, seen| now - *seen <= ASSERTION_MEMORY_SECS);
        let live: HashSet<&String> =
            self.cae_tokens.iter().filter(|token| token.expires_at > now).map(|token| &token.token_id).collect();
        self.revoked_token_ids.retain(|id| live.contains(id));
        self.cae_tokens.retain(|token| token.expires_at > now);
        self.access_tokens.retain(|_, expires_at| *expires_at > now);
        if self.issued.len() > MAX_ISSUED_RECORDED {
            self.issued.drain(..MAX_ISSUED_RECORDED / 2);
        }
    }
}

/// Everything the handlers share.
pub(crate) struct EmulatorState {
    pub(crate) base_url: Url,
    pub(crate) tenant_id: Uuid,
    /// Every tenant with users here: the emulator's own first.
    pub(crate) tenants: Vec<Uuid>,
    pub(crate) users: Vec<DirectoryUser>,
    pub(crate) memberships: RwLock<Memberships>,
    pub(crate) group_overage_limit: usize,
    pub(crate) graph_permissions: Vec<String>,
    pub(crate) strict_pkce: bool,
    pub(crate) graph_page_size: usize,
    pub(crate) clients: RwLock<Vec<ClientRegistration>>,
    access_token_lifetime: Option<i64>,
    pub(crate) code_lifetime: i64,
    pub(crate) admin_consent: bool,
    pub(crate) strict_refresh_token_rotation: bool,
    pub(crate) keys: RwLock<KeyRing>,
    pub(crate) faults: Faults,
    pub(crate) clock: Clock,
    grants: Mutex<Grants>,
    /// Graph requests received, counted before any fault or latency applies.
    pub(crate) graph_requests: std::sync::atomic::AtomicU64,
    /// Token endpoint requests received, likewise.
    pub(crate) token_requests: std::sync::atomic::AtomicU64,
    pub(crate) managed_identities: Vec<crate::config::ManagedIdentity>,
    pub(crate) managed_identity_token_lifetime: i64,
    /// The `X-IDENTITY-HEADER` value the identity endpoint requires (App Service's
    /// `IDENTITY_HEADER`).
    pub(crate) identity_header: String,
    /// Identity endpoint requests that were answered with a token.
    pub(crate) identity_tokens_issued: std::sync::atomic::AtomicU64,
}

/// Entra's default access token lifetime: random between 60 and 90 minutes.
/// <https://learn.microsoft.com/entra/identity-platform/access-tokens#token-lifetime>
const ENTRA_ACCESS_TOKEN_LIFETIME_SECS: std::ops::RangeInclusive<i64> = 3600..=5400;

impl EmulatorState {
    /// Whether the access token `token_id` (its `uti`) is live by the emulator's clock; one it
    /// does not know has expired (and was forgotten) or is not its own.
    pub(crate) fn access_token_is_live(&self, token_id: &str) -> bool {
        let now = self.clock.now();
        self.grants().access_tokens.get(token_id).is_some_and(|expires_at| *expires_at > now)
    }

    /// The lifetime of the next access token: the configured one, or Entra's random one.
    pub(crate) fn access_token_lifetime(&self) -> i64 {
        self.access_token_lifetime
            .unwrap_or_else(|| rand::Rng::gen_range(&mut rand::thread_rng(), ENTRA_ACCESS_TOKEN_LIFETIME_SECS))
    }

    pub(crate) fn new(config: EmulatorConfig, base_url: Url) -> anyhow::Result<Self> {
        let mut users = Vec::with_capacity(config.users.len());
        for user in config.users {
            let photo = match &user.photo {
                Some(path) => Some(std::fs::read(path).map_err(|err| {
                    anyhow::anyhow!("cannot read photo {} of {}: {err}", path.display(), user.user_principal_name)
                })?),
                None => None,
            };
            let tenant_id = user.tenant_id.unwrap_or(config.tenant_id);
            users.push(DirectoryUser { oid: user.object_id(), tenant_id, user, photo });
        }
        let mut tenants = vec![config.tenant_id];
        for user in &users {
            if !tenants.contains(&user.tenant_id) {
                tenants.push(user.tenant_id);
            }
        }
        let memberships = Memberships::new(config.groups, &users)?;
        Ok(Self {
            base_url,
            tenant_id: config.tenant_id,
            tenants,
            users,
            memberships: RwLock::new(memberships),
            group_overage_limit: config.group_overage_limit,
            graph_permissions: config.graph_permissions,
            strict_pkce: config.strict_pkce,
            graph_page_size: config.graph_page_size.clamp(1, 999),
            clients: RwLock::new(config.clients),
            access_token_lifetime: config.access_token_lifetime.map(|lifetime| lifetime.as_secs() as i64),
            code_lifetime: config.code_lifetime.as_secs() as i64,
            admin_consent: config.admin_consent,
            strict_refresh_token_rotation: config.strict_refresh_token_rotation,
            keys: RwLock::new(KeyRing::generate()?),
            faults: Faults::default(),
            clock: Clock::default(),
            grants: Mutex::new(Grants::default()),
            graph_requests: std::sync::atomic::AtomicU64::new(0),
            token_requests: std::sync::atomic::AtomicU64::new(0),
            managed_identities: config.managed_identities,
            managed_identity_token_lifetime: config.managed_identity_token_lifetime.as_secs() as i64,
            identity_header: URL_SAFE_NO_PAD.encode(rand::random::<[u8; 24]>()),
            identity_tokens_issued: std::sync::atomic::AtomicU64::new(0),
        })
    }

    pub(crate) fn grants(&self) -> MutexGuard<'_, Grants> {
        self.grants.lock().unwrap_or_else(PoisonError::into_inner)
    }

    pub(crate) fn keys(&self) -> std::sync::RwLockReadGuard<'_, KeyRing> {
        self.keys.read().unwrap_or_else(PoisonError::into_inner)
    }

    pub(crate) fn client(&self, client_id: &str) -> Option<ClientRegistration> {
        let clients = self.clients.read().unwrap_or_else(PoisonError::into_inner);
        clients.iter().find(|c| c.client_id == client_id).cloned()
    }

    pub(crate) fn clients(&self) -> Vec<ClientRegistration> {
        self.clients.read().unwrap_or_else(PoisonError::into_inner).clone()
    }

    pub(crate) fn user_by_upn(&self, upn: &str) -> Option<&DirectoryUser> {
        self.users.iter().find(|u| u.user.user_principal_name.eq_ignore_ascii_case(upn.trim()))
    }

    pub(crate) fn user_by_oid(&self, oid: Uuid) -> Option<&DirectoryUser> {
        self.users.iter().find(|u| u.oid == oid)
    }

    /// The v2.0 issuer of this tenant: `{base}/{tid}/v2.0`.
    pub(crate) fn issuer(&self) -> String {
        self.issuer_for(self.tenant_id)
    }

    pub(crate) fn issuer_for(&self, tenant: Uuid) -> String {
        format!("{}/{tenant}/v2.0", self.base())
    }

    /// The base URL without a trailing slash.
    pub(crate) fn base(&self) -> &str {
        self.base_url.as_str().trim_end_matches('/')
    }

    /// Whether a `{tenant}` path segment names a tenant here (or a multi-tenant alias).
    pub(crate) fn accepts_tenant(&self, segment: &str) -> bool {
        is_multi_tenant(segment) || self.tenant_of_segment(segment).is_some()
    }

    /// The tenant a `{tenant}` path segment names: one of the tenants here by id, or the
    /// emulator's own by its domain; `None` for `common`/`organizations` or an unknown one.
    pub(crate) fn tenant_of_segment(&self, segment: &str) -> Option<Uuid> {
        if segment.eq_ignore_ascii_case(crate::config::DEFAULT_DOMAIN) {
            return Some(self.tenant_id);
        }
        segment.parse::<Uuid>().ok().filter(|id| self.tenants.contains(id))
    }

    /// The authority a `{tenant}` segment names, normalised: the tenant id, or `common` /
    /// `organizations`.
    pub(crate) fn authority_of(&self, segment: &str) -> String {
        match self.tenant_of_segment(segment) {
            Some(tenant) => tenant.to_string(),
            None => segment.to_ascii_lowercase(),
        }
    }

    /// Whether the user may sign in at the authority named by `segment`: any user at
    /// `common`/`organizations`, else only the tenant's own users (Entra: AADSTS50020).
    pub(crate) fn may_sign_in_at(&self, segment: &str, user_oid: Uuid) -> bool {
        let home = self.user_by_oid(user_oid).map(|user| user.tenant_id);
        is_multi_tenant(segment) || (home.is_some() && self.tenant_of_segment(segment) == home)
    }

    /// Every requested permission exists on its resource (Graph's list, or the API an app
    /// registration exposes); else Entra's AADSTS650053 for the first that does not.
    pub(crate) fn check_permissions_exist(
        &self,
        client_id: &str,
        scopes: &[String],
    ) -> Result<(), crate::error::OAuthError> {
        for scope in scopes.iter().filter(|scope| !crate::scopes::is_oidc_scope(scope)) {
            let (exists, resource) = match scope.strip_prefix("api://").and_then(|rest| rest.split_once('/')) {
                Some((app, name)) => (
                    self.client(app).is_some() && name == crate::config::EXPOSED_API_PERMISSION,
                    format!("api://{app}"),
                ),
                None => (
                    self.graph_permissions.iter().any(|known| known.eq_ignore_ascii_case(scope)),
                    "00000003-0000-0000-c000-000000000000".to_owned(),
                ),
            };
            if !exists {
                let name = crate::scopes::permission_name(scope);
                return Err(crate::error::OAuthError::new(
                    "invalid_client",
                    650053,
                    format!(
                        "The application '{client_id}' asked for scope '{name}' that doesn't exist on the resource '{resource}'. Contact the app vendor."
                    ),
                ));
            }
        }
        Ok(())
    }

    pub(crate) fn memberships(&self) -> std::sync::RwLockReadGuard<'_, Memberships> {
        self.memberships.read().unwrap_or_else(PoisonError::into_inner)
    }

    pub(crate) fn memberships_mut(&self) -> std::sync::RwLockWriteGuard<'_, Memberships> {
        self.memberships.write().unwrap_or_else(PoisonError::into_inner)
    }

    /// A fresh opaque value (codes, refresh tokens, session ids), recorded as issued.
    pub(crate) fn new_secret_value(&self, prefix: &str) -> String {
        let value = format!("{prefix}{}", URL_SAFE_NO_PAD.encode(rand::random::<[u8; 32]>()));
        self.record_issued(value.clone());
        value
    }

    pub(crate) fn record_issued(&self, value: String) {
        let mut grants = self.grants();
        grants.issued.push(value);
        grants.since_prune += 1;
        if grants.since_prune >= PRUNE_EVERY {
            grants.since_prune = 0;
            grants.prune(self.clock.now(), self.code_lifetime);
        }
    }

    /// Whether `user` already agreed to every scope in `scopes` for `client_id`.
    pub(crate) fn has_consent(&self, user: Uuid, client_id: &str, scopes: &[String]) -> bool {
        if self.admin_consent {
            return true;
        }
        let grants = self.grants();
        scopes
            .iter()
            .filter(|scope| !crate::scopes::is_oidc_scope(scope))
            .all(|scope| grants.consents.contains(&(user, client_id.to_owned(), scope.to_lowercase())))
    }

    pub(crate) fn grant_consent(&self, user: Uuid, client_id: &str, scopes: &[String]) {
        let mut grants = self.grants();
        for scope in scopes {
            grants.consents.insert((user, client_id.to_owned(), scope.to_lowercase()));
        }
    }
}

/// `common` and `organizations`: any tenant's users.
/// The personal Microsoft accounts' tenant (`/consumers`): the emulator has no personal accounts.
pub(crate) fn is_consumers(segment: &str) -> bool {
    segment.eq_ignore_ascii_case("consumers")
}

/// The tenant id of personal Microsoft accounts, in their tokens' `tid` and issuer.
pub(crate) const CONSUMERS_TENANT_ID: &str = "9188040d-6c67-4c5b-b112-36a304b66dad";

pub(crate) fn is_multi_tenant(segment: &str) -> bool {
    segment.eq_ignore_ascii_case("common") || segment.eq_ignore_ascii_case("organizations")
}

impl EmulatorState {
    /// Signs with a new key from now on; returns its `kid`. The old key stays published.
    pub(crate) fn rotate_signing_key(&self) -> anyhow::Result<String> {
        let key = crate::keys::SigningKey::generate()?;
        let kid = key.kid.clone();
        self.keys.write().unwrap_or_else(PoisonError::into_inner).rotate(key);
        Ok(kid)
    }

    /// Revokes the user's sessions as `revokeSignInSessions` (or a password reset) does: every
    /// refresh token and SSO session ends, and CAE-capable access tokens stop working at once
    /// (others live until they expire). `None` if no such user.
    pub(crate) fn revoke_refresh_tokens(&self, upn: &str) -> Option<usize> {
        let oid = self.user_by_upn(upn)?.oid;
        let now = self.clock.now();
        let mut grants = self.grants();
        grants.sso_sessions.retain(|_, session| session.sign_in.user_oid != oid);
        let revoked_ids: Vec<String> = grants
            .cae_tokens
            .iter()
            .filter(|token| token.user_oid == oid)
            .map(|token| token.token_id.clone())
            .collect();
        grants.revoked_token_ids.extend(revoked_ids);
        grants.revoked_at.insert(oid, now);
        let mut revoked = 0;
        for grant in grants.refresh_tokens.values_mut().filter(|g| g.sign_in.user_oid == oid) {
            if grant.status == RefreshStatus::Active {
                revoked += 1;
            }
            grant.status = RefreshStatus::Revoked;
        }
        Some(revoked)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sign_in() -> SignIn {
        SignIn { user_oid: Uuid::nil(), sid: "sid".into(), auth_time: 0 }
    }

    fn refresh(issued_at: i64, status: RefreshStatus) -> RefreshGrant {
        RefreshGrant {
            issued_at,
            platform: Platform::Web,
            expires_at: None,
            auth_contexts: Vec::new(),
            client_id: "c".into(),
            scopes: vec![],
            sign_in: sign_in(),
            status,
        }
    }

    #[test]
    fn pruning_forgets_spent_grants_and_keeps_live_ones() {
        let now = 10 * 24 * 3600;
        let mut grants = Grants::default();
        grants.refresh_tokens.insert("live".into(), refresh(now - 3600, RefreshStatus::Active));
        grants.refresh_tokens.insert("recently-rotated".into(), refresh(now - 3600, RefreshStatus::Rotated));
        grants.refresh_tokens.insert("long-rotated".into(), refresh(now - 2 * 24 * 3600, RefreshStatus::Rotated));
        grants.used_assertion_ids.insert("old-jti".into(), now - 2 * 3600);
        grants.used_assertion_ids.insert("new-jti".into(), now - 60);
        grants.prune(now, 600);
        let mut kept: Vec<&String> = grants.refresh_tokens.keys().collect();
        kept.sort();
        assert_eq!(kept, vec!["live", "recently-rotated"]);
        assert!(grants.used_assertion_ids.contains_key("new-jti"));
        assert!(!grants.used_assertion_ids.contains_key("old-jti"));
    }
}
