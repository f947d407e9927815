//! Pending sign-ins live in the browser, not on the server: one short-lived sealed cookie per
//! sign-in between `/login` and the callback (as Microsoft.Identity.Web's correlation cookie and
//! oauth2-proxy's CSRF cookie do), so an anonymous flood of `/login` costs the server nothing.
//!
//! The cookie holds state, nonce, PKCE verifier and the return path, sealed with AES-256-GCM under
//! a key derived from the session secret and bound to the cookie's name; its name is derived from
//! the state, so the callback finds exactly its own. It is `HttpOnly`, `SameSite=Lax` (Entra's
//! redirect back is a top-level GET), `Secure` with the `__Host-` prefix over https, and lives as
//! long as the sign-in may take. At most [`MAX_PENDING_SIGN_INS`] exist per browser.

use std::time::Duration;

use axum::http::{HeaderMap, HeaderValue};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use secrecy::ExposeSecret;
use sha2::{Digest, Sha256};

use crate::axum::own_cookies::{self, SetCookies};
use crate::keys::{SealError, Sealer};
use crate::pending_sign_in::PendingSignIn;
use crate::secret::constant_time_eq;

/// At most this many sign-ins pending per browser (tabs signing in at once); the oldest goes first.
pub const MAX_PENDING_SIGN_INS: usize = 5;
const HTTPS_PREFIX: &str = "__Host-entra-signin.";
const HTTP_PREFIX: &str = "entra-signin.";
/// How every pending sign-in cookie's name starts, once `__Host-` is taken off.
pub(crate) const UNPREFIXED_NAME_START: &str = HTTP_PREFIX;
/// Characters of the state's hash in the cookie name: enough to tell tabs apart.
const NAME_HASH_CHARS: usize = 16;

/// Reads and writes pending sign-in cookies.
pub(crate) struct PendingCookies<'a> {
    pub(crate) sealer: &'a Sealer,
    /// Over https: `Secure` and the `__Host-` prefix.
    pub(crate) secure: bool,
    pub(crate) lifetime: Duration,
}

impl PendingCookies<'_> {
    fn prefix(&self) -> &'static str {
        if self.secure { HTTPS_PREFIX } else { HTTP_PREFIX }
    }

    fn name_for(&self, state: &str) -> String {
        let hash = URL_SAFE_NO_PAD.encode(Sha256::digest(state.as_bytes()));
        format!("{}{}", self.prefix(), &hash[..NAME_HASH_CHARS])
    }

    /// The cookie for a new pending sign-in, plus removals that keep the browser within the bound
    /// (unreadable and expired ones, then the oldest).
    pub(crate) fn issue(&self, request: &HeaderMap, pending: &PendingSignIn) -> Result<SetCookies, SealError> {
        let mut live = Vec::new();
        let mut set_cookies = Vec::new();
        for (name, value) in self.ours(request) {
            match self.open(&name, &value) {
                Some(existing) if !existing.is_expired() => live.push((existing.created_at, name)),
                _ => set_cookies.push(self.removal(name)),
            }
        }
        live.sort();
        let excess = (live.len() + 1).saturating_sub(MAX_PENDING_SIGN_INS);
        set_cookies.extend(live.into_iter().take(excess).map(|(_, name)| self.removal(name)));

        let name = self.name_for(pending.state.expose_secret());
        let plain = serde_json::to_vec(pending).map_err(|_| SealError)?;
        let sealed = URL_SAFE_NO_PAD.encode(self.sealer.seal(name.as_bytes(), &plain)?);
        set_cookies.push(own_cookies::set(name, sealed, self.lifetime, self.secure));
        Ok(set_cookies)
    }

    /// The pending sign-in whose state is `state`, if this browser holds it, and the removal of
    /// its cookie: the callback sends that on every outcome, so it is used once.
    pub(crate) fn take(&self, request: &HeaderMap, state: &str) -> (Option<PendingSignIn>, HeaderValue) {
        let name = self.name_for(state);
        let pending = self
            .ours(request)
            .into_iter()
            .filter(|(candidate, _)| *candidate == name)
            .find_map(|(_, value)| self.open(&name, &value))
            .filter(|pending| constant_time_eq(pending.state.expose_secret(), state));
        (pending, self.removal(name))
    }

    fn ours(&self, request: &HeaderMap) -> Vec<(String, String)> {
        own_cookies::in_request(request)
            .filter(|cookie| cookie.name().starts_with(self.prefix()))
            .map(|cookie| (cookie.name().to_owned(), cookie.value().to_owned()))
            .collect()
    }

    fn open(&self, name: &str, value: &str) -> Option<PendingSignIn> {
        let sealed = URL_SAFE_NO_PAD.decode(value).ok()?;
        let plain = self.sealer.open(name.as_bytes(), &sealed).ok()?;
        serde_json::from_slice(&plain).ok()
    }

    fn removal(&self, name: String) -> HeaderValue {
        own_cookies::removal(name, self.secure)
    }
}

#[cfg(test)]
mod tests {
    use axum::http::header::COOKIE;
    use cookie::Cookie;

    use super::*;
    use crate::keys::SessionKeys;
    use crate::return_to::LocalPath;

    fn request_with(set_cookies: &[HeaderValue]) -> HeaderMap {
        let pairs: Vec<String> = set_cookies
            .iter()
            .filter_map(|v| Cookie::parse(v.to_str().ok()?.to_owned()).ok())
            .filter(|c| !c.value().is_empty())
            .map(|c| format!("{}={}", c.name(), c.value()))
            .collect();
        let mut headers = HeaderMap::new();
        headers.insert(COOKIE, HeaderValue::from_str(&pairs.join("; ")).unwrap());
        headers
    }

    #[test]
    fn a_pending_sign_in_round_trips_once_and_hides_its_secrets() {
        let keys = SessionKeys::from_secrets(&[]);
        let cookies =
            PendingCookies { sealer: &keys.pending_sign_ins, secure: true, lifetime: Duration::from_secs(600) };
        let pending = PendingSignIn::new(LocalPath::parse("/profile").unwrap(), Duration::from_secs(600));
        let set = cookies.issue(&HeaderMap::new(), &pending).unwrap();
        assert_eq!(set.len(), 1);
        let text = set[0].to_str().unwrap();
        for attribute in ["__Host-entra-signin.", "HttpOnly", "SameSite=Lax", "Secure", "Path=/", "Max-Age=600"] {
            assert!(text.contains(attribute), "{attribute} in {text}");
        }
        assert!(!text.contains(pending.nonce.expose_secret()) && !text.contains(pending.pkce_verifier.expose_secret()));

        let request = request_with(&set);
        let (taken, removal) = cookies.take(&request, pending.state.expose_secret());
        assert_eq!(taken.unwrap().return_to.as_str(), "/profile");
        assert!(removal.to_str().unwrap().contains("Max-Age=0"));
        let (other, _) = cookies.take(&request, "another-state");
        assert!(other.is_none());
    }

    #[test]
    fn a_browser_holds_at_most_the_bound_oldest_dropped() {
        let keys = SessionKeys::from_secrets(&[]);
        let cookies =
            PendingCookies { sealer: &keys.pending_sign_ins, secure: false, lifetime: Duration::from_secs(600) };
        let mut jar: Vec<HeaderValue> = Vec::new();
        for _ in 0..MAX_PENDING_SIGN_INS - 1 {
            let pending = PendingSignIn::new(LocalPath::root(), Duration::from_secs(600));
            jar.extend(cookies.issue(&request_with(&jar), &pending).unwrap());
        }
        let mut oldest = PendingSignIn::new(LocalPath::root(), Duration::from_secs(600));
        oldest.created_at = 0;
        let oldest_state = oldest.state.expose_secret().to_owned();
        let mut request_jar = jar.clone();
        request_jar.extend(cookies.issue(&HeaderMap::new(), &oldest).unwrap());
        let newest = PendingSignIn::new(LocalPath::root(), Duration::from_secs(600));
        let set = cookies.issue(&request_with(&request_jar), &newest).unwrap();
        let removals: Vec<&str> = set.iter().map(|v| v.to_str().unwrap()).filter(|v| v.contains("Max-Age=0")).collect();
        assert_eq!(removals.len(), 1, "one over the bound: {set:?}");
        assert!(removals[0].starts_with(&cookies.name_for(&oldest_state)), "the oldest goes");
    }

    #[test]
    fn expired_and_unreadable_cookies_are_removed_when_a_sign_in_starts() {
        let keys = SessionKeys::from_secrets(&[]);
        let cookies =
            PendingCookies { sealer: &keys.pending_sign_ins, secure: false, lifetime: Duration::from_secs(600) };
        let mut expired = PendingSignIn::new(LocalPath::root(), Duration::from_secs(600));
        expired.expires_at = 0;
        let expired_name = cookies.name_for(expired.state.expose_secret());
        let mut jar = cookies.issue(&HeaderMap::new(), &expired).unwrap();
        jar.push(HeaderValue::from_static("entra-signin.garbage=not-sealed"));
        let set = cookies
            .issue(&request_with(&jar), &PendingSignIn::new(LocalPath::root(), Duration::from_secs(600)))
            .unwrap();
        let removed: Vec<&str> = set.iter().map(|v| v.to_str().unwrap()).filter(|v| v.contains("Max-Age=0")).collect();
        assert_eq!(removed.len(), 2, "{set:?}");
        assert!(removed.iter().any(|v| v.starts_with(&format!("{expired_name}="))), "the expired one");
        assert!(removed.iter().any(|v| v.starts_with("entra-signin.garbage=")), "the unreadable one");
    }

    #[test]
    fn a_cookie_renamed_or_tampered_does_not_open() {
        let keys = SessionKeys::from_secrets(&[]);
        let cookies =
            PendingCookies { sealer: &keys.pending_sign_ins, secure: false, lifetime: Duration::from_secs(600) };
        let pending = PendingSignIn::new(LocalPath::root(), Duration::from_secs(600));
        let set = cookies.issue(&HeaderMap::new(), &pending).unwrap();
        let value = Cookie::parse(set[0].to_str().unwrap().to_owned()).unwrap().value().to_owned();
        let other = PendingSignIn::new(LocalPath::root(), Duration::from_secs(600));
        let moved = format!("{}={value}", cookies.name_for(other.state.expose_secret()));
        let mut request = HeaderMap::new();
        request.insert(COOKIE, HeaderValue::from_str(&moved).unwrap());
        assert!(cookies.take(&request, other.state.expose_secret()).0.is_none());
    }
}
