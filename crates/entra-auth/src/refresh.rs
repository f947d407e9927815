//! One refresh per refresh token: Entra rotates the refresh token at every use, so two requests
//! of one session redeeming the same one at once would leave one of them with a dead token.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use secrecy::{ExposeSecret, SecretString};
use sha2::{Digest, Sha256};
use tokio::sync::OnceCell;

use crate::error::SignInError;
use crate::id_token::IdTokenError;
use crate::jwks::JwksError;
use crate::memberships::Memberships;
use crate::token_endpoint::TokenError;
use crate::tokens::TokenSet;

/// A successful refresh is remembered this long for requests that still hold the old token. A
/// failure is not remembered past the requests that waited for it: the next one tries again.
const REMEMBER_FOR: Duration = Duration::from_secs(120);

/// Why tokens could not be made fresh.
#[derive(Clone, Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RefreshFailure {
    /// The refresh token is dead (expired, revoked) or Entra wants interaction (MFA, consent):
    /// the user must sign in again.
    #[error("sign-in required: {0}")]
    NeedsSignIn(String),
    /// Entra could not be asked right now.
    #[error("token refresh unavailable: {0}")]
    Unavailable(String),
}

impl From<SignInError> for RefreshFailure {
    fn from(error: SignInError) -> Self {
        match error {
            SignInError::Token(TokenError::Rejected(entra)) if entra.needs_interaction() => {
                RefreshFailure::NeedsSignIn(entra.to_string())
            }
            // A refreshed ID token that does not verify (bar an unreachable JWKS) ends the session.
            SignInError::InvalidIdToken(error)
                if !matches!(error, IdTokenError::Key(JwksError::Unavailable { .. })) =>
            {
                RefreshFailure::NeedsSignIn(error.to_string())
            }
            other => RefreshFailure::Unavailable(other.to_string()),
        }
    }
}

/// Tokens after a refresh, and what the refreshed ID token says the user is a member of now.
#[derive(Clone)]
#[non_exhaustive]
pub struct Refreshed {
    /// The new tokens (the old refresh token is spent: store these).
    pub tokens: TokenSet,
    /// Roles and groups as of this refresh; `None` when Entra sent no ID token, or Graph could not
    /// list the groups of an overage (the previous ones then stand until the next refresh).
    pub memberships: Option<Memberships>,
}

type Outcome = Result<Arc<Refreshed>, RefreshFailure>;
/// When the cell was made, and the cell every caller with this refresh token shares.
type SharedRefresh = (Instant, Arc<OnceCell<Outcome>>);

/// In-flight and recent refreshes, by a hash of the refresh token they redeem.
#[derive(Default)]
pub(crate) struct RefreshCoordinator {
    cells: Mutex<HashMap<[u8; 32], SharedRefresh>>,
}

/// One refresh per refresh token and purpose (`""` for the sign-in scopes, else the scope string
/// of another resource's token).
fn key_of(refresh_token: &SecretString, purpose: &str) -> [u8; 32] {
    let mut hasher = Sha256::new();
    hasher.update(refresh_token.expose_secret().as_bytes());
    hasher.update([0]);
    hasher.update(purpose.as_bytes());
    hasher.finalize().into()
}

impl RefreshCoordinator {
    /// The shared cell for this refresh token; the first caller's refresh fills it.
    pub(crate) fn cell_for(&self, refresh_token: &SecretString, purpose: &str) -> Arc<OnceCell<Outcome>> {
        let key = key_of(refresh_token, purpose);
        let mut cells = self.cells.lock().unwrap_or_else(PoisonError::into_inner);
        cells.retain(|_, (created, _)| created.elapsed() < REMEMBER_FOR);
        cells.entry(key).or_insert_with(|| (Instant::now(), Arc::new(OnceCell::new()))).1.clone()
    }

    /// Forgets `cell` (a refresh that could not reach Entra): a transient failure must not outlive
    /// itself, so the next request with this refresh token tries again.
    pub(crate) fn forget(&self, refresh_token: &SecretString, purpose: &str, cell: &Arc<OnceCell<Outcome>>) {
        let key = key_of(refresh_token, purpose);
        let mut cells = self.cells.lock().unwrap_or_else(PoisonError::into_inner);
        if cells.get(&key).is_some_and(|(_, current)| Arc::ptr_eq(current, cell)) {
            cells.remove(&key);
        }
    }
}
