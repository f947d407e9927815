//! One sign-in between the authorize redirect and the callback: its state, nonce and PKCE
//! verifier, and the authorize URL that carries their public halves.

use std::time::Duration;

use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Serialize};
use url::Url;

use crate::clock::{unix_now, unix_now_nanos};
use crate::return_to::LocalPath;
use crate::secret::{pkce_challenge, random_token};
use crate::sign_in_options::SignInOptions;

/// A pending sign-in lives this long by default (Entra's codes live about 10 minutes too).
pub const PENDING_SIGN_IN_LIFETIME: Duration = Duration::from_secs(10 * 60);

/// One sign-in between /login and the callback. Travels only sealed (see `axum::pending`).
#[derive(Serialize, Deserialize)]
pub struct PendingSignIn {
    /// Sent as `state`; the callback must bring it back.
    #[serde(with = "crate::secret::serde_secret")]
    pub state: SecretString,
    /// Sent as `nonce`; the ID token must carry it.
    #[serde(with = "crate::secret::serde_secret")]
    pub nonce: SecretString,
    /// PKCE verifier; only its S256 challenge left the server.
    #[serde(with = "crate::secret::serde_secret")]
    pub pkce_verifier: SecretString,
    /// Same-origin path to go to afterwards.
    pub return_to: LocalPath,
    /// Unix nanoseconds: orders a browser's pending sign-ins, however quickly they were started.
    pub created_at: u64,
    /// Unix seconds after which the callback is refused.
    pub expires_at: u64,
    /// Incremental consent: the scopes this sign-in authorizes instead of the sign-in scopes.
    #[serde(default)]
    pub scopes: Option<Vec<String>>,
}

impl PendingSignIn {
    /// Fresh state, nonce and PKCE verifier (256 bits each) for a sign-in returning to `return_to`.
    pub fn new(return_to: LocalPath, lifetime: Duration) -> Self {
        Self {
            state: random_token(32),
            nonce: random_token(32),
            pkce_verifier: random_token(32),
            return_to,
            created_at: unix_now_nanos(),
            expires_at: unix_now() + lifetime.as_secs(),
            scopes: None,
        }
    }

    /// Whether it is past its lifetime.
    pub fn is_expired(&self) -> bool {
        unix_now() > self.expires_at
    }
}

/// The /authorize URL for a pending sign-in: code flow, PKCE S256, state, nonce, and the hints,
/// prompt and `claims` of `options` (already merged with any client capabilities).
pub fn authorization_url(
    endpoint: &Url,
    client_id: &str,
    redirect_uri: &Url,
    scope: &str,
    pending: &PendingSignIn,
    options: &SignInOptions,
) -> Url {
    let mut url = endpoint.clone();
    {
        let mut query = url.query_pairs_mut();
        query
            .append_pair("client_id", client_id)
            .append_pair("response_type", "code")
            .append_pair("redirect_uri", redirect_uri.as_str())
            // query, not form_post: a cross-site POST would not carry our SameSite=Lax cookie.
            .append_pair("response_mode", "query")
            .append_pair("scope", scope)
            .append_pair("state", pending.state.expose_secret())
            .append_pair("nonce", pending.nonce.expose_secret())
            .append_pair("code_challenge", &pkce_challenge(&pending.pkce_verifier))
            .append_pair("code_challenge_method", "S256");
        if let Some(hint) = &options.login_hint {
            query.append_pair("login_hint", hint.as_str());
        }
        if let Some(hint) = &options.domain_hint {
            query.append_pair("domain_hint", hint.as_str());
        }
        if let Some(prompt) = options.prompt {
            query.append_pair("prompt", prompt.as_str());
        }
        if let Some(claims) = &options.claims {
            query.append_pair("claims", claims);
        }
    }
    url
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_authorize_url_carries_every_option_given() {
        let endpoint = Url::parse("https://login.example/t/oauth2/v2.0/authorize").unwrap();
        let redirect = Url::parse("https://app.example/callback").unwrap();
        let pending = PendingSignIn::new(LocalPath::root(), PENDING_SIGN_IN_LIFETIME);
        let options = SignInOptions::default()
            .with_login_hint("adele@contoso.com".parse().unwrap())
            .with_domain_hint("contoso.com".parse().unwrap())
            .with_prompt(crate::sign_in_options::Prompt::SelectAccount)
            .with_claims(r#"{"access_token":{}}"#)
            .with_scopes("Mail.Read".parse().unwrap());
        assert_eq!(options.scopes.as_ref().map(|s| s.to_scope_string()).as_deref(), Some("Mail.Read"));
        let url = authorization_url(&endpoint, "client", &redirect, "openid Mail.Read", &pending, &options);
        let pairs: Vec<(String, String)> = url.query_pairs().into_owned().collect();
        let value = |name: &str| pairs.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str());
        assert_eq!(value("login_hint"), Some("adele@contoso.com"));
        assert_eq!(value("domain_hint"), Some("contoso.com"));
        assert_eq!(value("prompt"), Some("select_account"));
        assert_eq!(value("claims"), Some(r#"{"access_token":{}}"#));
        assert_eq!(value("scope"), Some("openid Mail.Read"));
        assert_eq!(value("code_challenge_method"), Some("S256"));

        let plain = authorization_url(&endpoint, "client", &redirect, "openid", &pending, &SignInOptions::default());
        for absent in ["login_hint", "domain_hint", "prompt", "claims"] {
            assert!(!plain.query_pairs().any(|(k, _)| k == absent), "{absent}");
        }
    }
}
