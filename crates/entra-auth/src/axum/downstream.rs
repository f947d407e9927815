//! Calling an API as the signed-in user: a base URL and the scopes it needs; the token comes
//! from the session (through the refresh token, with consent asked when missing) and never
//! reaches app code; JSON out; throttling and claims challenges handled as for Graph.

use serde::de::DeserializeOwned;
use tower_sessions::Session;
use url::Url;

use crate::axum::resource_tokens::access_token_for;
use crate::axum::session::AccessTokenError;
use crate::client::EntraClient;
use crate::graph::{GraphClient, GraphError};
use crate::sign_in_options::ResourceScopes;

/// An API called with the signed-in user's token.
///
/// ```
/// # fn make(client: &entra_auth::EntraClient) -> Result<(), Box<dyn std::error::Error>> {
/// use entra_auth::axum::DownstreamApi;
/// let orders = DownstreamApi::new(
///     client,
///     "https://orders.example/api".parse()?,
///     "api://00000000-0000-0000-0000-00000000000a/access_as_user".parse()?,
/// );
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct DownstreamApi {
    http: GraphClient,
    scopes: ResourceScopes,
}

/// Why a downstream call failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum DownstreamError {
    /// No token: not signed in, consent needed (send the user to
    /// [`AuthRoutes::consent_path`](crate::axum::AuthRoutes::consent_path)), or Entra unavailable.
    #[error(transparent)]
    Token(#[from] AccessTokenError),
    /// The API answered an error (or not at all).
    #[error(transparent)]
    Api(#[from] GraphError),
}

impl DownstreamApi {
    /// The API at `base_url`, called with tokens for `scopes`.
    pub fn new(client: &EntraClient, base_url: Url, scopes: ResourceScopes) -> Self {
        Self { http: GraphClient::new(client.http().clone(), base_url), scopes }
    }

    /// The scopes its tokens carry.
    pub fn scopes(&self) -> &ResourceScopes {
        &self.scopes
    }

    /// `GET {base}{path}` as the user signed in to `session`, parsed as JSON.
    pub async fn get_json<T: DeserializeOwned>(
        &self,
        client: &EntraClient,
        session: &Session,
        path: &str,
    ) -> Result<T, DownstreamError> {
        let token = access_token_for(client, session, &self.scopes).await?;
        Ok(self.http.get_json(path, &token).await?)
    }

    /// `POST {base}{path}` with `body` as JSON, as the user signed in to `session`; the answer
    /// parsed as JSON.
    pub async fn post_json<B: serde::Serialize, T: DeserializeOwned>(
        &self,
        client: &EntraClient,
        session: &Session,
        path: &str,
        body: &B,
    ) -> Result<T, DownstreamError> {
        let token = access_token_for(client, session, &self.scopes).await?;
        Ok(self.http.post_json(path, body, &token).await?)
    }
}
