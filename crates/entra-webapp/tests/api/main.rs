//! Integration tests: the emulator and the app on port 0, driven by an HTTP client with a cookie
//! jar that follows no redirect (each hop is looked at).

#![allow(unreachable_pub, reason = "items of integration-test modules are crate-private by nature")]
#![allow(clippy::unwrap_used, reason = "test helpers fail the test on the spot, like the tests they serve")]

mod helpers;
mod redis_server;

mod api_callers;
mod authorization;
mod credentials;
mod downstream;
mod failures;
mod front_channel;
mod fuzz;
mod hardening;
mod http2;
mod lifecycle;
mod many_groups;
mod nginx;
mod nginx_forward_auth;
mod passed_tokens;
mod platform;
mod proxy;
mod proxy_connections;
mod proxy_http2;
mod proxy_tls;
mod python_upstream;
mod refresh;
mod scale_out;
mod server_limits;
mod session_store;
mod settings;
mod shared_cache;
mod sign_in;
mod upstream;
