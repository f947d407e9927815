//! The tokens a signed-in user's session holds server-side, and the clock they are judged by.

use std::time::Duration;

use secrecy::SecretString;
use serde::{Deserialize, Serialize};

use crate::clock::unix_now;
use crate::token_endpoint::TokenResponse;

/// Access tokens are refreshed this long before they expire.
pub const REFRESH_AHEAD: Duration = Duration::from_secs(5 * 60);

/// An access token for some scopes, and when it expires. Server-side only, as every token.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct ResourceToken {
    /// The access token.
    pub access_token: SecretString,
    /// When it expires, Unix seconds.
    pub expires_at: u64,
}

impl ResourceToken {
    pub(crate) fn of(tokens: &TokenSet) -> Self {
        Self { access_token: tokens.access_token.clone(), expires_at: tokens.expires_at }
    }
}

/// An access token and what renews it. Server-side only: never in a cookie, a URL or a log.
#[derive(Clone, Serialize, Deserialize)]
pub struct TokenSet {
    /// The access token.
    #[serde(with = "crate::secret::serde_secret")]
    pub access_token: SecretString,
    /// Unix seconds.
    pub expires_at: u64,
    /// The refresh token, replaced at every use.
    #[serde(default, with = "crate::secret::serde_secret_option")]
    pub refresh_token: Option<SecretString>,
    /// Granted scopes.
    pub scopes: Vec<String>,
    /// The access token's lifetime when issued (`expires_in`), seconds.
    #[serde(default)]
    pub lifetime: u64,
    /// The ID token that came with these tokens (verified), when
    /// [`EntraConfig::keep_id_token`](crate::EntraConfig) asks for it.
    #[serde(default, with = "crate::secret::serde_secret_option")]
    pub id_token: Option<SecretString>,
}

impl TokenSet {
    pub(crate) fn from_response(response: TokenResponse) -> Self {
        Self {
            access_token: response.access_token,
            expires_at: unix_now() + response.expires_in,
            refresh_token: response.refresh_token,
            scopes: response.scope.split_whitespace().map(str::to_owned).collect(),
            lifetime: response.expires_in,
            id_token: response.id_token,
        }
    }

    /// Seconds of validity left.
    pub fn seconds_left(&self) -> u64 {
        self.expires_at.saturating_sub(unix_now())
    }

    /// Whether to refresh before use: within five minutes of expiry, or within the last tenth of
    /// a short lifetime.
    pub fn needs_refresh(&self) -> bool {
        due(self.expires_at, self.lifetime)
    }

    /// Forgets the access token (after an API refused it); the refresh token stays.
    pub fn expire_access_token(&mut self) {
        self.expires_at = 0;
    }
}

#[cfg(test)]
impl TokenSet {
    /// A token set for unit tests: access token `at-{expires_at}`, a lifetime of an hour.
    pub(crate) fn for_tests(expires_at: u64, refresh_token: Option<&str>) -> Self {
        Self {
            access_token: SecretString::from(format!("at-{expires_at}")),
            expires_at,
            refresh_token: refresh_token.map(SecretString::from),
            scopes: vec!["access_as_user".into()],
            lifetime: 3600,
            id_token: None,
        }
    }
}

/// Whether tokens expiring at `expires_at` after a `lifetime` are due for a refresh.
fn due(expires_at: u64, lifetime: u64) -> bool {
    expires_at.saturating_sub(unix_now()) <= REFRESH_AHEAD.as_secs().min(lifetime / 10)
}

/// A [`TokenSet`]'s times alone: whether to refresh. Kept beside the tokens in a bucket of their
/// own, so every signed-in request (most find the tokens not due) reads a few bytes instead of
/// copying and scanning the tokens.
#[derive(Serialize, Deserialize)]
pub(crate) struct TokenTimes {
    expires_at: u64,
    #[serde(default)]
    lifetime: u64,
}

impl TokenTimes {
    /// The times of `tokens`.
    pub(crate) fn of(tokens: &TokenSet) -> Self {
        Self { expires_at: tokens.expires_at, lifetime: tokens.lifetime }
    }

    /// [`TokenSet::needs_refresh`] of the set these times were read from.
    pub(crate) fn needs_refresh(&self) -> bool {
        due(self.expires_at, self.lifetime)
    }
}
