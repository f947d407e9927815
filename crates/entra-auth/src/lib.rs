//! Sign users in with Microsoft Entra ID from a server-side axum app.
//!
//! The authorization code flow with PKCE (S256), state and nonce; full ID token validation against
//! the tenant's JWKS; tokens kept server-side and refreshed; a Graph client; and the axum routes,
//! extractor and layer that put it in front of any app. Facts behind each check: `docs/ENTRA.md`.

pub mod aadsts;
pub mod authority;
pub mod axum;
pub mod client;
pub mod discovery;
pub mod error;
pub mod graph;
pub mod http;
pub mod id_token;
pub mod jwks;
pub mod keys;
pub mod refresh;
pub mod return_to;
pub mod secret;
pub mod token;

pub use authority::{Authority, Tenant};
pub use client::{EntraClient, EntraConfig, PendingSignIn, SignedIn, TokenSet};
pub use error::{ErrorPage, SignInError};
pub use graph::{GraphClient, GraphError, Profile};
