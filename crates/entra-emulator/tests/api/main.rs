//! Integration tests: the emulator over real TCP, driven like a client and a browser would.

#![allow(unreachable_pub, reason = "items of integration-test modules are crate-private by nature")]
#![allow(clippy::unwrap_used, reason = "test helpers fail the test on the spot, like the tests they serve")]

mod helpers;

mod authorize;
mod cli;
mod client_credentials;
mod directory;
mod discovery;
mod faults;
mod fidelity;
mod graph;
mod identity;
mod logout;
mod on_behalf_of;
mod platforms;
mod resources;
mod tls;
mod token;
