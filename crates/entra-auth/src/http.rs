//! The one outbound HTTP client: no redirects (a token endpoint that redirects is an error, not a
//! hop to follow), bounded time, operating-system roots plus `SSL_CERT_FILE`.

use std::time::Duration;

/// Builds the shared client. Trusts the OS roots (and `SSL_CERT_FILE`, e.g. a TLS-inspection CA
/// or the emulator's self-signed CA) and the Mozilla roots.
pub(crate) fn client(timeout: Duration) -> reqwest::Result<reqwest::Client> {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .connect_timeout(Duration::from_secs(5).min(timeout))
        .timeout(timeout)
        .user_agent(concat!("entra-auth/", env!("CARGO_PKG_VERSION")))
        .build()
}
