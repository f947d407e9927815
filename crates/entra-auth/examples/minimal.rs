//! The smallest axum app with Entra sign-in: a public home page and a page that requires sign-in.
//!
//! ```sh
//! TENANT_ID=<tenant id> CLIENT_ID=<application id> CLIENT_SECRET=<secret value> \
//! REDIRECT_URI=http://localhost:3000/callback cargo run -p entra-auth --example minimal
//! ```
//! Register `http://localhost:3000/callback` as a Web redirect URI of the app registration first.

use std::sync::Arc;

use axum::routing::get;
use axum::{Router, middleware};
use entra_auth::axum::{AuthRoutes, SignedInUser, require_sign_in};
use entra_auth::{Authority, EntraClient, EntraConfig};
use secrecy::SecretString;
use tower_sessions::MemoryStore;

/// `/` for everyone, `/private` and everything under `/reports` for signed-in users, and the
/// sign-in routes.
pub(crate) fn app(config: EntraConfig) -> Result<Router, reqwest::Error> {
    let auth = AuthRoutes::new(Arc::new(EntraClient::new(config)?));
    // A whole router behind sign-in, without taking `SignedInUser` in each handler.
    let reports = Router::new()
        .route("/reports/latest", get(|| async { "The latest report" }))
        .route_layer(middleware::from_fn(require_sign_in));
    Ok(Router::new()
        .route("/", get(home))
        .route("/private", get(private))
        .merge(reports)
        .merge(auth.router())
        .layer(auth.layer(MemoryStore::default())))
}

async fn home(user: Option<SignedInUser>) -> String {
    match user {
        Some(user) => format!("Hello {}. Sign out with a POST to /logout (GET /logout shows the form).", user.name),
        None => "Hello. Visit /private to sign in.".to_owned(),
    }
}

/// Anonymous visitors are sent to sign in and come back here.
async fn private(user: SignedInUser) -> String {
    format!("Welcome {} ({})", user.name, user.email.unwrap_or_default())
}

/// The four settings from the environment; `AUTHORITY_HOST` picks another cloud (or an emulator).
pub(crate) fn config_from_env() -> Result<EntraConfig, Box<dyn std::error::Error>> {
    let var = |name: &str| std::env::var(name).map_err(|_| format!("set {name}"));
    let host = std::env::var("AUTHORITY_HOST").unwrap_or_else(|_| "https://login.microsoftonline.com".to_owned());
    Ok(EntraConfig::new(
        Authority::new(host.parse()?, var("TENANT_ID")?.parse()?),
        var("CLIENT_ID")?,
        SecretString::from(var("CLIENT_SECRET")?),
        var("REDIRECT_URI")?.parse()?,
    ))
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:3000").await?;
    println!("Open http://localhost:3000/");
    axum::serve(listener, app(config_from_env()?)?).await?;
    Ok(())
}
