//! The axum pieces: sign-in routes, the `SignedInUser` extractor and a require-sign-in layer.
//! They need a tower-sessions `SessionManagerLayer` around them.

mod extract;
pub mod pending;
mod routes;
pub mod session;

pub use extract::{LOGIN_PATH, SessionStoreUnavailable, SignInRequired, require_sign_in, sign_in_path};
pub use pending::MAX_PENDING_SIGN_INS;
pub use routes::{AuthRoutes, ErrorPageRenderer, request_id, sign_out_csrf_token};
pub use session::{AccessTokenError, SignedInUser, access_token, expire_access_token};
