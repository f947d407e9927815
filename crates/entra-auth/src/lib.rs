#![doc = include_str!("../README.md")]
#![warn(missing_docs)]

mod aadsts;
mod app_tokens;
mod authority;
pub mod axum;
mod bearer;
mod client;
mod clock;
mod config;
mod credential;
mod discovery;
mod error;
mod graph;
mod http;
mod id_token;
mod jwks;
mod jwt;
mod keys;
mod memberships;
mod on_behalf_of;
mod pending_sign_in;
mod refresh;
mod return_to;
mod secret;
mod sign_in_options;
mod token_endpoint;
mod tokens;

pub use app_tokens::AppTokenError;
pub use authority::{Authority, CONSUMERS_TENANT_ID, InvalidTenant, PUBLIC_CLOUD_HOST, Tenant};
pub use bearer::{AccessTokenClaims, BearerError, BearerPolicy};
pub use client::{EntraClient, OIDC_SCOPES, SignedIn, UserGroupsError};
pub use config::{DEFAULT_CLOCK_LEEWAY, DEFAULT_GRAPH_ENDPOINT, DEFAULT_HTTP_TIMEOUT, EntraConfig};
pub use credential::{Certificate, ClientCredential, CredentialError, ManagedIdentity, TOKEN_EXCHANGE_AUDIENCE};
pub use error::SignInError;
pub use graph::{GraphClient, GraphError, MAX_MEMBERSHIP_PAGES, Photo, Profile};
pub use keys::{KeyedNames, OpenError, SealError, Sealer, SessionKeys};
pub use memberships::Memberships;
pub use refresh::{RefreshFailure, Refreshed};
pub use return_to::{LocalPath, MAX_LENGTH as MAX_RETURN_TO_LENGTH};
pub use sign_in_options::{
    DomainHint, GRAPH_RESOURCE, InvalidHint, LoginHint, MAX_DOMAIN_HINT_LENGTH, MAX_LOGIN_HINT_LENGTH, MAX_SCOPES,
    Prompt, ResourceScopes, SignInOptions, resource_of,
};
pub use token_endpoint::{EntraError, TokenError};
pub use tokens::{REFRESH_AHEAD, ResourceToken, TokenSet};

/// The OpenID Connect building blocks [`EntraClient`] is made of, for apps that drive the flow
/// themselves or verify ID tokens they got elsewhere: provider metadata, the JWKS cache, ID token
/// verification, and the pending sign-in with its authorize URL.
pub mod oidc {
    pub use crate::discovery::{DiscoveryError, ProviderMetadata};
    pub use crate::id_token::{Expectations, IdTokenClaims, IdTokenError, verify, verify_with_key};
    pub use crate::jwks::{JwksCache, JwksError, MIN_REFETCH_INTERVAL, REFRESH_EVERY, SigningKey};
    pub use crate::pending_sign_in::{PENDING_SIGN_IN_LIFETIME, PendingSignIn, authorization_url};
}
