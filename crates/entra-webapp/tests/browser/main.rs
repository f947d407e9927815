//! End-to-end in a real headless Chromium (Debian `chromium` + `chromium-driver`), driven over
//! WebDriver: typing into the emulator's pages and clicking, as a person would.

#![allow(unreachable_pub, reason = "items of integration-test modules are crate-private by nature")]
#![allow(clippy::unwrap_used, reason = "test helpers fail the test on the spot, like the tests they serve")]

#[path = "../api/helpers.rs"]
mod helpers;

// The API tests' upstream; these tests use less of it (not its connection count).
#[allow(dead_code)]
#[path = "../api/upstream.rs"]
mod upstream;

mod chromium;
mod journeys;
