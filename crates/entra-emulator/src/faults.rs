//! Fault switches: make the emulator misbehave on purpose so relying parties can prove they cope.

use std::sync::Mutex;
use std::time::Duration;

use serde::{Deserialize, Serialize};

/// A deliberately bad ID token, for proving that a relying party rejects each kind.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum BadIdToken {
    /// `nonce` differs from the one sent to /authorize.
    WrongNonce,
    /// `aud` is another application's id.
    WrongAudience,
    /// `iss` names another authority.
    WrongIssuer,
    /// `tid` (and the matching `iss`) of another tenant.
    WrongTenant,
    /// `exp` an hour in the past.
    Expired,
    /// Signed by a key that is not in the JWKS.
    UnknownKid,
    /// `alg: none` with an empty signature.
    AlgNone,
    /// HS256 with the tenant's RSA public key (PEM) as the HMAC secret: the key-confusion attack.
    Hs256WithPublicKey,
}

impl BadIdToken {
    /// Every kind, for attack matrices.
    pub const ALL: [BadIdToken; 8] = [
        BadIdToken::WrongNonce,
        BadIdToken::WrongAudience,
        BadIdToken::WrongIssuer,
        BadIdToken::WrongTenant,
        BadIdToken::Expired,
        BadIdToken::UnknownKid,
        BadIdToken::AlgNone,
        BadIdToken::Hs256WithPublicKey,
    ];
}

/// A token-endpoint failure to inject: Entra's `error` and AADSTS code.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TokenFailure {
    /// OAuth `error`, e.g. `invalid_grant`, `invalid_client`, `interaction_required`.
    pub error: String,
    /// AADSTS number, e.g. 50173.
    pub code: u32,
    /// Text after the code in `error_description`.
    #[serde(default = "TokenFailure::default_message")]
    pub message: String,
}

impl TokenFailure {
    /// A failure with a generic message.
    pub fn new(error: &str, code: u32) -> Self {
        Self { error: error.to_owned(), code, message: Self::default_message() }
    }

    fn default_message() -> String {
        "Failure injected by the emulator.".to_owned()
    }
}

/// A Graph failure to inject.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct GraphFailure {
    /// HTTP status, e.g. 429, 401, 500, 503.
    pub status: u16,
    /// `Retry-After` seconds, sent with 429 and 503.
    #[serde(default)]
    pub retry_after_secs: Option<u64>,
    /// A claims challenge to put in `WWW-Authenticate` (with status 401). It stops after the
    /// failure's count whatever the client does; [`Faults::require_auth_context`] is the
    /// challenge that only a new sign-in meets.
    #[serde(default)]
    pub claims_challenge: Option<String>,
}

#[derive(Debug, Default)]
struct FaultState {
    token_failures: Option<(u32, TokenFailure)>,
    token_latency: Duration,
    graph_latency: Duration,
    graph_failures: Option<(u32, GraphFailure)>,
    bad_id_token: Option<BadIdToken>,
    jwks_failures: u32,
    required_auth_context: Option<String>,
}

/// The switches. Cheap to call from tests; every switch is off by default.
#[derive(Debug, Default)]
pub struct Faults {
    state: Mutex<FaultState>,
}

impl Faults {
    fn with<T>(&self, f: impl FnOnce(&mut FaultState) -> T) -> T {
        let mut state = self.state.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        f(&mut state)
    }

    /// The next `count` token requests fail with `failure`.
    pub fn fail_token_requests(&self, count: u32, failure: TokenFailure) {
        self.with(|s| s.token_failures = (count > 0).then_some((count, failure)));
    }

    /// Every token request waits this long first.
    pub fn set_token_latency(&self, latency: Duration) {
        self.with(|s| s.token_latency = latency);
    }

    /// Every Graph request waits this long first.
    pub fn set_graph_latency(&self, latency: Duration) {
        self.with(|s| s.graph_latency = latency);
    }

    /// The next `count` Graph requests fail with `failure` (`u32::MAX`: until cleared).
    pub fn fail_graph_requests(&self, count: u32, failure: GraphFailure) {
        self.with(|s| s.graph_failures = (count > 0).then_some((count, failure)));
    }

    /// The next `count` Graph requests answer 429 with `Retry-After: retry_after_secs`.
    pub fn throttle_graph(&self, count: u32, retry_after_secs: u64) {
        self.fail_graph_requests(
            count,
            GraphFailure { status: 429, retry_after_secs: Some(retry_after_secs), claims_challenge: None },
        );
    }

    /// The next `count` JWKS requests answer 503 (keys unavailable, as in an outage).
    pub fn fail_jwks_requests(&self, count: u32) {
        self.with(|s| s.jwks_failures = count);
    }

    /// The next ID token issued is bad in the given way.
    pub fn issue_bad_id_token(&self, kind: BadIdToken) {
        self.with(|s| s.bad_id_token = Some(kind));
    }

    /// From now on Graph refuses every access token that lacks the authentication context
    /// `id` (e.g. `c1`) in its `acrs` claim, with a claims challenge asking for it, as a
    /// Conditional Access policy on an authentication context does: only a client that signs the
    /// user in again with those `claims` gets past it. Until cleared.
    pub fn require_auth_context(&self, id: &str) {
        self.with(|s| s.required_auth_context = Some(id.to_owned()));
    }

    /// Turns every switch off.
    pub fn clear(&self) {
        self.with(|s| *s = FaultState::default());
    }

    pub(crate) fn token_latency(&self) -> Duration {
        self.with(|s| s.token_latency)
    }

    pub(crate) fn graph_latency(&self) -> Duration {
        self.with(|s| s.graph_latency)
    }

    pub(crate) fn take_token_failure(&self) -> Option<TokenFailure> {
        self.with(|s| take_one(&mut s.token_failures))
    }

    pub(crate) fn take_graph_failure(&self) -> Option<GraphFailure> {
        self.with(|s| take_one(&mut s.graph_failures))
    }

    pub(crate) fn take_jwks_failure(&self) -> bool {
        self.with(|s| {
            let fail = s.jwks_failures > 0;
            s.jwks_failures = s.jwks_failures.saturating_sub(1);
            fail
        })
    }

    pub(crate) fn required_auth_context(&self) -> Option<String> {
        self.with(|s| s.required_auth_context.clone())
    }

    pub(crate) fn take_bad_id_token(&self) -> Option<BadIdToken> {
        self.with(|s| s.bad_id_token.take())
    }
}

fn take_one<T: Clone>(slot: &mut Option<(u32, T)>) -> Option<T> {
    let (remaining, value) = slot.as_mut()?;
    let value = value.clone();
    if *remaining != u32::MAX {
        *remaining -= 1;
        if *remaining == 0 {
            *slot = None;
        }
    }
    Some(value)
}
