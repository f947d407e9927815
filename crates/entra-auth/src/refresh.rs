//! One token request per secret and purpose at a time. Entra rotates the refresh token at every
//! use, so two requests of one session redeeming the same one at once would leave one of them with
//! a dead token; and concurrent callers presenting one access token for on-behalf-of need one
//! token, not one each.

use std::collections::HashMap;
use std::future::Future;
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
    /// The new tokens (store these: their refresh token replaces the old one).
    pub tokens: TokenSet,
    /// Roles and groups as of this refresh; `None` when Entra sent no ID token, or Graph could not
    /// list the groups of an overage (the previous ones then stand until the next refresh).
    pub memberships: Option<Memberships>,
}

type Outcome = Result<Arc<Refreshed>, RefreshFailure>;
/// When the cell was made, and the cell every caller with this secret and purpose shares.
type SharedRefresh = (Instant, Arc<OnceCell<Outcome>>);

/// In-flight and recent token requests, by [`key_of`] the secret they present and their purpose.
#[derive(Default)]
pub(crate) struct RefreshCoordinator {
    cells: Mutex<HashMap<[u8; 32], SharedRefresh>>,
}

/// The key of a secret (a refresh token, a caller's access token) and what it is used for: a hash,
/// so no map keyed by it holds the secret.
pub(crate) fn key_of(secret: &str, purpose: &str) -> [u8; 32] {
    let mut hasher = Sha256::new();
    hasher.update(secret.as_bytes());
    hasher.update([0]);
    hasher.update(purpose.as_bytes());
    hasher.finalize().into()
}

impl RefreshCoordinator {
    /// Runs `request` for `secret` (a refresh token, a caller's access token) and `purpose` (`""`
    /// for the sign-in scopes, else what the token is for), or waits for the one already running
    /// and shares its outcome; counted in `metric`. An outcome is kept [`REMEMBER_FOR`] for late
    /// callers holding the same secret, except a failure to reach Entra, forgotten at once.
    pub(crate) async fn share<F, Fut>(
        &self,
        secret: &SecretString,
        purpose: &str,
        metric: &'static str,
        request: F,
    ) -> Outcome
    where
        F: Fn() -> Fut,
        Fut: Future<Output = Result<Refreshed, SignInError>>,
    {
        self.run(secret, purpose, metric, &request).await.0
    }

    /// [`share`](Self::share) for a request that may be made again with the same secret (a
    /// resource's token, on-behalf-of), unlike a session's refresh, whose new refresh token every
    /// late caller holding the old one must get and store: an outcome remembered longer than a
    /// short-lived token lasts can hold one already due; it is forgotten and asked for again, once.
    pub(crate) async fn share_fresh<F, Fut>(
        &self,
        secret: &SecretString,
        purpose: &str,
        metric: &'static str,
        request: F,
    ) -> Outcome
    where
        F: Fn() -> Fut,
        Fut: Future<Output = Result<Refreshed, SignInError>>,
    {
        let due = |outcome: &Outcome| outcome.as_ref().is_ok_and(|refreshed| refreshed.tokens.needs_refresh());
        let (outcome, cell) = self.run(secret, purpose, metric, &request).await;
        if !due(&outcome) {
            return outcome;
        }
        self.forget(secret, purpose, &cell);
        let (outcome, cell) = self.run(secret, purpose, metric, &request).await;
        if due(&outcome) {
            // Due as issued (a lifetime this short): no late caller is to have it.
            self.forget(secret, purpose, &cell);
        }
        outcome
    }

    async fn run<F, Fut>(
        &self,
        secret: &SecretString,
        purpose: &str,
        metric: &'static str,
        request: &F,
    ) -> (Outcome, Arc<OnceCell<Outcome>>)
    where
        F: Fn() -> Fut,
        Fut: Future<Output = Result<Refreshed, SignInError>>,
    {
        let cell = self.cell_for(secret, purpose);
        let outcome = cell
            .get_or_init(|| async {
                let outcome = request().await.map(Arc::new).map_err(RefreshFailure::from);
                let label = match &outcome {
                    Ok(_) => "issued",
                    Err(RefreshFailure::NeedsSignIn(_)) => "sign_in_required",
                    Err(RefreshFailure::Unavailable(_)) => "unavailable",
                };
                metrics::counter!(metric, "outcome" => label).increment(1);
                outcome
            })
            .await
            .clone();
        if let Err(RefreshFailure::Unavailable(_)) = &outcome {
            self.forget(secret, purpose, &cell);
        }
        (outcome, cell)
    }

    /// The shared cell for this secret and purpose; the first caller's request fills it.
    fn cell_for(&self, secret: &SecretString, purpose: &str) -> Arc<OnceCell<Outcome>> {
        let key = key_of(secret.expose_secret(), purpose);
        let mut cells = self.cells.lock().unwrap_or_else(PoisonError::into_inner);
        cells.retain(|_, (created, _)| created.elapsed() < REMEMBER_FOR);
        cells.entry(key).or_insert_with(|| (Instant::now(), Arc::new(OnceCell::new()))).1.clone()
    }

    /// Forgets `cell` (a request that could not reach Entra, a token already due): the next
    /// request with this secret asks again.
    fn forget(&self, secret: &SecretString, purpose: &str, cell: &Arc<OnceCell<Outcome>>) {
        let key = key_of(secret.expose_secret(), purpose);
        let mut cells = self.cells.lock().unwrap_or_else(PoisonError::into_inner);
        if cells.get(&key).is_some_and(|(_, current)| Arc::ptr_eq(current, cell)) {
            cells.remove(&key);
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};

    use tokio::sync::Semaphore;

    use super::*;
    use crate::clock::unix_now;

    /// A request that counts itself and answers `answers[n]` the `n`th time: tokens expiring at
    /// that Unix time (lifetime an hour: due within its last five minutes), or an error for 0.
    struct Request {
        made: AtomicUsize,
        answers: Vec<Result<u64, fn() -> SignInError>>,
        /// Held by the test until every concurrent caller waits on the shared request.
        gate: Semaphore,
    }

    impl Request {
        fn new(answers: Vec<Result<u64, fn() -> SignInError>>, open: bool) -> Self {
            let gate = Semaphore::new(if open { Semaphore::MAX_PERMITS } else { 0 });
            Self { made: AtomicUsize::new(0), answers, gate }
        }

        async fn make(&self) -> Result<Refreshed, SignInError> {
            let n = self.made.fetch_add(1, Ordering::SeqCst);
            let _open = self.gate.acquire().await.expect("gate open");
            match self.answers[n] {
                Ok(expires_at) => {
                    Ok(Refreshed { tokens: TokenSet::for_tests(expires_at, Some("rt")), memberships: None })
                }
                Err(error) => Err(error()),
            }
        }

        fn made(&self) -> usize {
            self.made.load(Ordering::SeqCst)
        }
    }

    fn secret(value: &str) -> SecretString {
        SecretString::from(value.to_owned())
    }

    fn unreachable() -> SignInError {
        SignInError::RefreshUnavailable("connection refused".to_owned())
    }

    fn refused() -> SignInError {
        SignInError::InvalidIdToken(IdTokenError::BadSignature)
    }

    fn expiry(outcome: &Outcome) -> u64 {
        outcome.as_ref().expect("tokens").tokens.expires_at
    }

    #[tokio::test]
    async fn concurrent_callers_with_one_secret_share_one_request_and_late_ones_its_outcome() {
        let coordinator = RefreshCoordinator::default();
        let later = unix_now() + 3_600;
        let request = Request::new(vec![Ok(later), Ok(later + 1)], false);
        let rt = secret("rt-1");
        let call = || coordinator.share(&rt, "", "test", || request.make());
        let open = async {
            // Opened once the first caller is inside the request and the others wait for it.
            while request.made() == 0 {
                tokio::task::yield_now().await;
            }
            request.gate.add_permits(Semaphore::MAX_PERMITS);
        };
        let (one, two, three, ()) = tokio::join!(call(), call(), call(), open);
        assert_eq!(request.made(), 1);
        assert!([one, two, three].iter().all(|outcome| expiry(outcome) == later));
        let late = coordinator.share(&rt, "", "test", || request.make()).await;
        assert_eq!((expiry(&late), request.made()), (later, 1), "a late caller with the old secret");
        let other = coordinator.share(&rt, "Mail.Read", "test", || request.make()).await;
        assert_eq!((expiry(&other), request.made()), (later + 1, 2), "another purpose has its own");
    }

    #[tokio::test]
    async fn a_failure_to_reach_entra_is_forgotten_and_a_refusal_kept() {
        let coordinator = RefreshCoordinator::default();
        let later = unix_now() + 3_600;
        let request = Request::new(vec![Err(unreachable), Ok(later)], true);
        let rt = secret("rt-1");
        let first = coordinator.share(&rt, "", "test", || request.make()).await;
        assert!(matches!(first, Err(RefreshFailure::Unavailable(_))));
        let second = coordinator.share(&rt, "", "test", || request.make()).await;
        assert_eq!((expiry(&second), request.made()), (later, 2), "asked again");

        let request = Request::new(vec![Err(refused), Ok(later)], true);
        let dead = secret("rt-dead");
        for _ in 0..2 {
            let outcome = coordinator.share(&dead, "", "test", || request.make()).await;
            assert!(matches!(outcome, Err(RefreshFailure::NeedsSignIn(_))));
        }
        assert_eq!(request.made(), 1, "a refusal is the answer for that secret");
    }

    #[tokio::test]
    async fn a_due_token_is_asked_for_again_once_where_the_secret_can_be_used_again() {
        let coordinator = RefreshCoordinator::default();
        let (due, later) = (unix_now() + 60, unix_now() + 3_600);
        let caller = secret("caller.token");
        // A token remembered from a request some time ago, due by now.
        let request = Request::new(vec![Ok(due), Ok(later), Ok(later + 1)], true);
        let first = coordinator.share(&caller, "obo", "test", || request.make()).await;
        assert_eq!(expiry(&first), due);
        let fresh = coordinator.share_fresh(&caller, "obo", "test", || request.make()).await;
        assert_eq!((expiry(&fresh), request.made()), (later, 2), "due: asked again");
        let kept = coordinator.share_fresh(&caller, "obo", "test", || request.make()).await;
        assert_eq!((expiry(&kept), request.made()), (later, 2), "the new one is shared");

        // Due as issued: asked twice, handed out, not kept for the next caller.
        let request = Request::new(vec![Ok(due), Ok(due + 1), Ok(later)], true);
        let short = secret("short.lived");
        let outcome = coordinator.share_fresh(&short, "obo", "test", || request.make()).await;
        assert_eq!((expiry(&outcome), request.made()), (due + 1, 2));
        let next = coordinator.share_fresh(&short, "obo", "test", || request.make()).await;
        assert_eq!((expiry(&next), request.made()), (later, 3));

        // A session's refresh is shared, never made again: `share` hands out what it got, due or not.
        let request = Request::new(vec![Ok(due), Ok(later)], true);
        let rt = secret("rt-1");
        for _ in 0..2 {
            let outcome = coordinator.share(&rt, "", "test", || request.make()).await;
            assert_eq!(expiry(&outcome), due);
        }
        assert_eq!(request.made(), 1);
    }
}
