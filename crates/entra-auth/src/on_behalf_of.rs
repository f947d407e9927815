//! Tokens on behalf of a caller: a web API that received a user's access token trades it for one
//! for another resource as that user (the on-behalf-of grant), to call that resource with the
//! user's rights. Kept, by a hash of the caller's token and the scopes, until shortly before they
//! expire; concurrent requests with the same token share one request to Entra (see `refresh.rs`).
//! <https://learn.microsoft.com/en-us/entra/identity-platform/v2-oauth2-on-behalf-of-flow>

use std::collections::HashMap;
use std::sync::{Mutex, PoisonError};

use crate::tokens::{ResourceToken, TokenSet};

/// Tokens kept at most (one per caller's token and scopes); when full, the cache starts over.
const MAX_KEPT: usize = 10_000;

/// Obtained tokens, by `refresh::key_of` the caller's token and the scopes (a hash: the cache
/// holds no caller's token).
#[derive(Default)]
pub(crate) struct OnBehalfOfTokens(Mutex<HashMap<[u8; 32], TokenSet>>);

impl OnBehalfOfTokens {
    /// The kept token for `key` while it has time left.
    pub(crate) fn kept(&self, key: &[u8; 32]) -> Option<ResourceToken> {
        let kept = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        kept.get(key).filter(|tokens| !tokens.needs_refresh()).map(ResourceToken::of)
    }

    /// Keeps `tokens` for `key` (without their refresh token: a new one is had from the caller's
    /// next token).
    pub(crate) fn keep(&self, key: [u8; 32], mut tokens: TokenSet) {
        tokens.refresh_token = None;
        let mut kept = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        if kept.len() >= MAX_KEPT {
            kept.retain(|_, tokens| !tokens.needs_refresh());
            if kept.len() >= MAX_KEPT {
                kept.clear();
            }
        }
        kept.insert(key, tokens);
    }
}

#[cfg(test)]
mod tests {
    use secrecy::ExposeSecret;

    use super::*;
    use crate::refresh::key_of;

    #[test]
    fn tokens_are_kept_by_the_callers_token_and_scopes_until_due() {
        let tokens = OnBehalfOfTokens::default();
        let later = crate::clock::unix_now() + 3_600;
        let key = key_of("caller.token", "User.Read");
        assert!(tokens.kept(&key).is_none());
        tokens.keep(key, TokenSet::for_tests(later, Some("rt")));
        assert_eq!(tokens.kept(&key).unwrap().access_token.expose_secret(), format!("at-{later}"));
        assert!(tokens.kept(&key_of("caller.token", "Mail.Read")).is_none(), "other scopes");
        assert!(tokens.kept(&key_of("other.token", "User.Read")).is_none(), "another caller's token");
        assert_ne!(key_of("ab", "c"), key_of("a", "bc"), "token and scopes stay apart");
        // Each caller's token has its own.
        let other = key_of("other.token", "User.Read");
        tokens.keep(other, TokenSet::for_tests(later + 1, None));
        assert!(tokens.kept(&key).is_some() && tokens.kept(&other).is_some());
        tokens.keep(key, TokenSet::for_tests(1, None));
        assert!(tokens.kept(&key).is_none(), "due: not kept");
        assert!(tokens.0.lock().unwrap().values().all(|tokens| tokens.refresh_token.is_none()));
    }

    #[test]
    fn when_full_the_due_tokens_go_first_then_all() {
        let tokens = OnBehalfOfTokens::default();
        let later = crate::clock::unix_now() + 3_600;
        for n in 0..MAX_KEPT {
            let expires_at = if n % 2 == 0 { 1 } else { later };
            tokens.keep(key_of(&format!("caller-{n}"), "User.Read"), TokenSet::for_tests(expires_at, None));
        }
        tokens.keep(key_of("one-more", "User.Read"), TokenSet::for_tests(later, None));
        assert_eq!(tokens.0.lock().unwrap().len(), MAX_KEPT / 2 + 1, "the due half went");
        assert!(tokens.kept(&key_of("caller-1", "User.Read")).is_some());
        for n in 0..MAX_KEPT {
            tokens.keep(key_of(&format!("more-{n}"), "User.Read"), TokenSet::for_tests(later, None));
        }
        assert!(tokens.0.lock().unwrap().len() < MAX_KEPT, "none due: it started over");
        assert!(tokens.kept(&key_of("caller-1", "User.Read")).is_none());
    }
}
