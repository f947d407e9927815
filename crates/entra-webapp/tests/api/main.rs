//! Integration tests: the emulator and the app on port 0, driven by an HTTP client with a cookie
//! jar that follows no redirect (each hop is looked at).

mod helpers;

mod failures;
mod settings;
mod sign_in;
