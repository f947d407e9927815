//! The axum pieces: the sign-in routes and their session layer ([`AuthRoutes`]), the
//! [`SignedInUser`] and [`AccessToken`] extractors, a require-sign-in middleware, front-channel
//! logout over the app's [`EntraSessionIndex`], and the pages a user sees when something fails.

mod after_sign_out;
mod authorization;
mod decoded;
mod downstream;
mod error_page;
mod extract;
mod front_channel;
mod own_cookies;
mod pending;
mod policy;
mod resource_tokens;
mod route_config;
mod routes;
mod session;
mod sign_in_routes;
mod sign_out_routes;

pub use authorization::{default_access_denied_page, require_access};
pub use downstream::{DownstreamApi, DownstreamError};
pub use error_page::{
    ErrorPage, ErrorPageRenderer, SignOutForm, SignOutPageRenderer, default_error_page, default_sign_out_page,
};
pub use extract::{
    AccessToken, AccessTokenRejection, AuthContext, DEFAULT_LOGIN_PATH, RequiredScopes, SessionStoreUnavailable,
    SignInRequired, TokenFor, TokenForRejection, consent_path, require_sign_in, sign_in_path,
};
pub use front_channel::{EntraSession, EntraSessionIndex};
pub use pending::MAX_PENDING_SIGN_INS;
pub use policy::{AccessDenied, AccessDeniedPage, AccessDeniedRenderer, AccessPolicy, Requirement};
pub use resource_tokens::{
    CONSENT_NEEDED_REMEMBERED, MAX_RESOURCE_TOKENS, access_token_for, expire_access_token_for, resource_token,
};
pub use routes::{
    AuthLayer, AuthRoutes, DEFAULT_LOGOUT_PATH, DEFAULT_SESSION_COOKIE_NAME, DEFAULT_SESSION_IDLE_TIMEOUT,
    DEFAULT_SESSION_MAX_LIFETIME,
};
pub use session::{
    AccessTokenError, RecordFacts, SignedInUser, access_token, expire_access_token, signed_in_user_refreshed, tokens,
};
pub use sign_out_routes::sign_out_csrf_token;
