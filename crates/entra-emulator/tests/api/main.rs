//! Integration tests: the emulator over real TCP, driven like a client and a browser would.

#![allow(unreachable_pub, reason = "items of integration-test modules are crate-private by nature")]

mod helpers;

mod authorize;
mod discovery;
mod faults;
mod graph;
mod logout;
mod tls;
mod token;
