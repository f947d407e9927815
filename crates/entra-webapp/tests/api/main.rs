//! Integration tests: the emulator and the app on port 0, driven by an HTTP client with a cookie
//! jar that follows no redirect (each hop is looked at).

#![allow(unreachable_pub, reason = "items of integration-test modules are crate-private by nature")]

mod helpers;
mod redis_server;

mod failures;
mod fuzz;
mod front_channel;
mod hardening;
mod lifecycle;
mod server_limits;
mod platform;
mod refresh;
mod scale_out;
mod session_store;
mod settings;
mod sign_in;
