//! The token endpoint: redeem a code (with the PKCE verifier) or a refresh token, with the client
//! secret, and read Entra's answers, errors included. See `docs/ENTRA.md`, "Token endpoint errors".

use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;
use url::Url;

use crate::credential::ClientAuth;

/// A successful token response. Every token is a secret: none is ever logged or shown.
#[derive(Deserialize)]
pub(crate) struct TokenResponse {
    /// The Graph access token (opaque to us: never parsed).
    #[serde(with = "crate::secret::serde_secret")]
    pub(crate) access_token: SecretString,
    /// The refresh token (`offline_access`).
    #[serde(default, with = "crate::secret::serde_secret_option")]
    pub(crate) refresh_token: Option<SecretString>,
    /// The ID token (absent on some refreshes).
    #[serde(default, with = "crate::secret::serde_secret_option")]
    pub(crate) id_token: Option<SecretString>,
    /// Seconds until the access token expires.
    pub(crate) expires_in: u64,
    /// Granted scopes, space-separated.
    #[serde(default)]
    pub(crate) scope: String,
}

/// Entra's error answer: branch on `error` and `error_codes`, never on the description.
#[derive(Clone, Debug, Deserialize)]
pub struct EntraError {
    /// OAuth error, e.g. `invalid_grant`.
    pub error: String,
    /// `AADSTS...: text`.
    #[serde(default)]
    pub error_description: String,
    /// AADSTS numbers.
    #[serde(default)]
    pub error_codes: Vec<u32>,
    /// For support requests.
    #[serde(default)]
    pub correlation_id: Option<String>,
}

impl EntraError {
    /// The first AADSTS code, if any.
    pub fn code(&self) -> Option<u32> {
        self.error_codes.first().copied()
    }

    /// Whether the user must go through sign-in again (refresh token dead, consent or MFA needed).
    pub fn needs_interaction(&self) -> bool {
        matches!(self.error.as_str(), "invalid_grant" | "interaction_required" | "consent_required")
    }
}

impl std::fmt::Display for EntraError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.code() {
            Some(code) => write!(f, "{} (AADSTS{code})", self.error),
            None => f.write_str(&self.error),
        }
    }
}

/// Why a token request failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TokenError {
    /// Entra refused, with its error shape.
    #[error("the token endpoint refused: {0}")]
    Rejected(EntraError),
    /// No answer.
    #[error("cannot reach the token endpoint: {0}")]
    Unreachable(#[source] reqwest::Error),
    /// An answer that is neither tokens nor an Entra error.
    #[error("the token endpoint answered HTTP {0} with something that is not a token response")]
    Malformed(u16),
}

/// The client credentials and endpoint for token requests.
pub(crate) struct TokenEndpoint<'a> {
    /// The shared no-redirect client.
    pub(crate) http: &'a reqwest::Client,
    /// From discovery.
    pub(crate) url: &'a Url,
    /// Our client id.
    pub(crate) client_id: &'a str,
    /// How we authenticate this request (a secret goes as `client_secret_post`).
    pub(crate) auth: ClientAuth,
    /// The `claims` request parameter (declared client capabilities), when there is one.
    pub(crate) claims: Option<&'a str>,
}

impl TokenEndpoint<'_> {
    /// Redeems an authorization code.
    pub(crate) async fn redeem_code(
        &self,
        code: &str,
        verifier: &SecretString,
        redirect_uri: &Url,
        scope: &str,
    ) -> Result<TokenResponse, TokenError> {
        self.request(&[
            ("grant_type", "authorization_code"),
            ("code", code),
            ("code_verifier", verifier.expose_secret()),
            ("redirect_uri", redirect_uri.as_str()),
            ("scope", scope),
        ])
        .await
    }

    /// Redeems a refresh token; the answer carries its replacement.
    pub(crate) async fn refresh(&self, refresh_token: &SecretString, scope: &str) -> Result<TokenResponse, TokenError> {
        self.request(&[
            ("grant_type", "refresh_token"),
            ("refresh_token", refresh_token.expose_secret()),
            ("scope", scope),
        ])
        .await
    }

    /// The app's own token (client credentials) for `scope`, a resource's `/.default`.
    pub(crate) async fn client_credentials(&self, scope: &str) -> Result<TokenResponse, TokenError> {
        self.request(&[("grant_type", "client_credentials"), ("scope", scope)]).await
    }

    /// A token for `scope` on behalf of the user whose token for this app is `assertion`.
    pub(crate) async fn on_behalf_of(&self, assertion: &str, scope: &str) -> Result<TokenResponse, TokenError> {
        self.request(&[
            ("grant_type", "urn:ietf:params:oauth:grant-type:jwt-bearer"),
            ("requested_token_use", "on_behalf_of"),
            ("assertion", assertion),
            ("scope", scope),
        ])
        .await
    }

    async fn request(&self, params: &[(&str, &str)]) -> Result<TokenResponse, TokenError> {
        let mut form: Vec<(&str, &str)> = vec![("client_id", self.client_id)];
        form.extend(self.auth.form_fields());
        form.extend_from_slice(params);
        if let Some(claims) = self.claims {
            form.push(("claims", claims));
        }
        let response = self.http.post(self.url.clone()).form(&form).send().await.map_err(TokenError::Unreachable)?;
        let status = response.status();
        let body = response.bytes().await.map_err(TokenError::Unreachable)?;
        if status.is_success() {
            return serde_json::from_slice(&body).map_err(|_| TokenError::Malformed(status.as_u16()));
        }
        match serde_json::from_slice::<EntraError>(&body) {
            Ok(error) => Err(TokenError::Rejected(error)),
            Err(_) => Err(TokenError::Malformed(status.as_u16())),
        }
    }
}

impl std::error::Error for EntraError {}
