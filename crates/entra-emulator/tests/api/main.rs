//! Integration tests: the emulator over real TCP, driven like a client and a browser would.

mod helpers;

mod authorize;
mod discovery;
mod faults;
mod graph;
mod logout;
mod tls;
mod token;
