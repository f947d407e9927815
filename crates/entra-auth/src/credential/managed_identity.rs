//! A managed identity as a federated identity credential of the app registration: the App Service
//! identity endpoint issues a token for `api://AzureADTokenExchange`, which the app sends as its
//! client assertion. Only a user-assigned identity can be a federated credential. See
//! `docs/ENTRA.md`, "Client authentication".

use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;
use url::Url;

use crate::credential::error::CredentialError;

/// The audience Entra expects of a federated credential's token.
pub const TOKEN_EXCHANGE_AUDIENCE: &str = "api://AzureADTokenExchange";
const API_VERSION: &str = "2019-08-01";

/// The App Service (or Azure Functions, Container Apps) managed identity endpoint.
#[derive(Clone)]
pub struct ManagedIdentity {
    endpoint: Url,
    header: SecretString,
    client_id: String,
}

impl std::fmt::Debug for ManagedIdentity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ManagedIdentity")
            .field("endpoint", &self.endpoint.as_str())
            .field("client_id", &self.client_id)
            .finish_non_exhaustive()
    }
}

#[derive(Deserialize)]
struct IdentityToken {
    access_token: SecretString,
    /// Unix seconds; App Service sends it as a string.
    expires_on: StringOrNumber,
}

#[derive(Deserialize)]
#[serde(untagged)]
enum StringOrNumber {
    Text(String),
    Number(u64),
}

impl ManagedIdentity {
    /// The user-assigned identity `client_id` at the platform's endpoint (`IDENTITY_ENDPOINT`)
    /// with its secret header value (`IDENTITY_HEADER`).
    pub fn new(endpoint: Url, header: SecretString, client_id: impl Into<String>) -> Self {
        Self { endpoint, header, client_id: client_id.into() }
    }

    /// The identity `client_id` at the endpoint App Service announces in `IDENTITY_ENDPOINT` and
    /// `IDENTITY_HEADER`.
    pub fn from_app_service_environment(client_id: impl Into<String>) -> Result<Self, CredentialError> {
        let missing = |name: &str| {
            CredentialError::ManagedIdentity(format!(
                "{name} is not set: the app does not run with a managed identity (assign the user-assigned identity to the web app)"
            ))
        };
        let endpoint = std::env::var("IDENTITY_ENDPOINT").map_err(|_| missing("IDENTITY_ENDPOINT"))?;
        let header = std::env::var("IDENTITY_HEADER").map_err(|_| missing("IDENTITY_HEADER"))?;
        let endpoint = Url::parse(&endpoint)
            .map_err(|_| CredentialError::ManagedIdentity(format!("IDENTITY_ENDPOINT '{endpoint}' is not a URL")))?;
        Ok(Self::new(endpoint, SecretString::from(header), client_id))
    }

    /// A token for [`TOKEN_EXCHANGE_AUDIENCE`] and when it expires (unix seconds).
    pub(crate) async fn token(&self, http: &reqwest::Client) -> Result<(SecretString, u64), CredentialError> {
        let fail = |reason: String| CredentialError::ManagedIdentity(reason);
        let response = http
            .get(self.endpoint.clone())
            .query(&[
                ("resource", TOKEN_EXCHANGE_AUDIENCE),
                ("api-version", API_VERSION),
                ("client_id", &self.client_id),
            ])
            .header("X-IDENTITY-HEADER", self.header.expose_secret())
            .send()
            .await
            .map_err(|err| fail(format!("cannot reach the identity endpoint: {err}")))?;
        let status = response.status();
        if !status.is_success() {
            let body = response.text().await.unwrap_or_default();
            let body: String = body.chars().take(300).collect();
            return Err(fail(format!(
                "the identity endpoint answered HTTP {status} for identity {} (is it assigned to the app?): {body}",
                self.client_id
            )));
        }
        let token: IdentityToken =
            response.json().await.map_err(|_| fail("the identity endpoint's answer is not a token".to_owned()))?;
        let expires_on = match token.expires_on {
            StringOrNumber::Number(seconds) => Some(seconds),
            StringOrNumber::Text(text) => text.trim().parse().ok(),
        }
        .ok_or_else(|| fail("the identity endpoint's expires_on is not a time".to_owned()))?;
        Ok((token.access_token, expires_on))
    }
}
