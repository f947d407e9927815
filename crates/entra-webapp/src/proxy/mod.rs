//! Proxy mode: sign-in in front of any web app. Every request that is not one of our routes goes
//! to the upstream after the session, the access policy and the unauthenticated action have had
//! their say, with the user's identity in App Service authentication's headers (Easy Auth
//! compatible) and every inbound identity header and cookie of ours removed. See `docs/PROXY.md`.

mod bearer;
pub(crate) mod caller_groups;
mod client_certificate;
pub mod cross_origin;
pub(crate) mod dedicated;
mod dispatch;
mod easy_auth;
pub mod forward;
mod handler;
pub(crate) mod identity;
mod multiplexed;
mod passed_tokens;
mod redirects;
mod renewed;
mod request_body;
mod shared_caches;
mod trusted_cas;
mod upstream_error;
mod upstream_tls;
mod websocket_over_http2;

pub use dispatch::OwnOrProxied;
pub use easy_auth::{SIGNED_OUT_PATH, login, logout, me, refresh, signed_out, signed_out_path, verify};
pub use forward::{Forwarded, Outbound, Proxy, Upstream, UpstreamError};
pub use handler::forward_service;
pub use identity::{Claim, NAME_CLAIM_TYPE, ROLE_CLAIM_TYPE};
