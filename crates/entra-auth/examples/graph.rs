//! Calling Microsoft Graph as the signed-in user: `/me` shows the user's Graph profile, fetched
//! with the session's access token (refreshed on the server when needed, never sent to the
//! browser).
//!
//! ```sh
//! TENANT_ID=<tenant id> CLIENT_ID=<application id> CLIENT_SECRET=<secret value> \
//! REDIRECT_URI=http://localhost:3000/callback cargo run -p entra-auth --example graph
//! ```

use std::sync::Arc;

use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::get;
use entra_auth::axum::{AccessToken, AuthRoutes};
use entra_auth::{Authority, EntraClient, EntraConfig};
use secrecy::SecretString;
use tower_sessions::MemoryStore;

/// `/me` for signed-in users, and the sign-in routes. Sign-in asks for `User.Read`.
pub(crate) fn app(config: EntraConfig) -> Result<Router, reqwest::Error> {
    let client = Arc::new(EntraClient::new(config.with_scopes(["User.Read"]))?);
    let auth = AuthRoutes::new(client.clone());
    Ok(Router::new()
        .route("/me", get(me))
        .with_state(client)
        .merge(auth.router())
        .layer(auth.layer(MemoryStore::default())))
}

/// Taking an `AccessToken` requires sign-in; the token is valid for the configured scopes.
async fn me(State(client): State<Arc<EntraClient>>, AccessToken(token): AccessToken) -> (StatusCode, String) {
    match client.graph().me(&token).await {
        Ok(profile) => (
            StatusCode::OK,
            format!(
                "Graph says you are {} <{}>",
                profile.display_name.as_deref().unwrap_or_default(),
                profile.email().unwrap_or_default()
            ),
        ),
        Err(err) => (StatusCode::BAD_GATEWAY, format!("Graph failed: {err}")),
    }
}

/// The four settings from the environment; `AUTHORITY_HOST` and `GRAPH_ENDPOINT` pick another
/// cloud (or an emulator).
pub(crate) fn config_from_env() -> Result<EntraConfig, Box<dyn std::error::Error>> {
    let var = |name: &str| std::env::var(name).map_err(|_| format!("set {name}"));
    let host = std::env::var("AUTHORITY_HOST").unwrap_or_else(|_| "https://login.microsoftonline.com".to_owned());
    let mut config = EntraConfig::new(
        Authority::new(host.parse()?, var("TENANT_ID")?.parse()?),
        var("CLIENT_ID")?,
        SecretString::from(var("CLIENT_SECRET")?),
        var("REDIRECT_URI")?.parse()?,
    );
    if let Ok(graph) = std::env::var("GRAPH_ENDPOINT") {
        config = config.with_graph_endpoint(graph.parse()?);
    }
    Ok(config)
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:3000").await?;
    println!("Open http://localhost:3000/me");
    axum::serve(listener, app(config_from_env()?)?).await?;
    Ok(())
}
