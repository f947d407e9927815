//! `METRICS_TOKEN`: whether `/metrics` is served, and to whom.

use secrecy::SecretString;

use crate::config::problems::Problems;
use crate::config::settings::{Settings, set};

/// Shorter tokens could be guessed; `openssl rand -base64 32` prints 44 characters.
const MIN_TOKEN_CHARS: usize = 32;

/// The bearer token a scraper must send for `/metrics`; `None` (unset) serves no `/metrics` at
/// all: counts of sign-ins, failures by reason and active sessions are not for anyone who asks.
pub(crate) fn validate(settings: &Settings, problems: &mut Problems) -> Option<Option<SecretString>> {
    let Some(token) = set(&settings.metrics_token) else {
        return Some(None);
    };
    let token = problems.resolved("METRICS_TOKEN", token)?;
    // What a client can put after `Bearer ` in a header (RFC 6750's token68 characters).
    let token68 = token.chars().all(|c| c.is_ascii_alphanumeric() || "-._~+/=".contains(c));
    if token.chars().count() < MIN_TOKEN_CHARS || !token68 {
        problems.add(
            "METRICS_TOKEN",
            format!(
                "must be at least {MIN_TOKEN_CHARS} characters of letters, digits and -._~+/= (a bearer token for Prometheus' `authorization` setting). Generate one with: openssl rand -base64 32"
            ),
        );
        return None;
    }
    Some(Some(SecretString::from(token)))
}
