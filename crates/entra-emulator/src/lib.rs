//! A local Microsoft Entra ID v2.0 + Microsoft Graph emulator.
//!
//! Start it in-process on a free loopback port and point any OAuth 2.0 / OpenID Connect client at
//! [`Emulator::authority`]; Graph calls go to [`Emulator::graph_endpoint`].
//!
//! ```no_run
//! # async fn run() -> anyhow::Result<()> {
//! use entra_emulator::{Emulator, EmulatorConfig};
//! let emulator = Emulator::start(EmulatorConfig::default()).await?;
//! println!("authority: {}", emulator.authority());
//! # Ok(()) }
//! ```

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use axum::serve::ListenerExt;
use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;
use url::Url;
use uuid::Uuid;

mod claims_request;
mod clock;
mod config;
mod directory;
mod error;
mod faults;
mod keys;
mod pages;
mod routes;
mod scopes;
mod state;
mod tls;
mod tokens;

pub use config::{
    ALL_COMPANY_GROUP_ID, AccessTokenVersion, CertificateCredential, ClientRegistration, DEFAULT_CLIENT_ID,
    DEFAULT_CLIENT_SECRET, DEFAULT_DOMAIN, DEFAULT_GRAPH_PAGE_SIZE, DEFAULT_GROUP_OVERAGE_LIMIT, DEFAULT_TENANT_ID,
    Directory, EXPOSED_API_PERMISSION, EmulatorConfig, FederatedCredential, GRAPH_DELEGATED_PERMISSIONS, Group,
    GroupMembershipClaims, ManagedIdentity, SALES_GROUP_ID, SignInAudience, User, UsersFileError, load_directory,
    load_users,
};
pub use faults::{BadIdToken, Faults, GraphFailure, TokenFailure};
pub use tls::CA_FILE_NAME;

use state::EmulatorState;

/// How to listen.
#[derive(Clone, Debug)]
pub struct ListenOptions {
    /// Address to bind; port 0 picks a free one.
    pub bind: SocketAddr,
    /// Serve HTTPS with a generated CA, written into this directory.
    pub tls_self_signed_dir: Option<PathBuf>,
    /// The URL clients reach the emulator at, when it differs from the bound address.
    pub public_url: Option<Url>,
}

impl Default for ListenOptions {
    fn default() -> Self {
        Self { bind: SocketAddr::from(([127, 0, 0, 1], 0)), tls_self_signed_dir: None, public_url: None }
    }
}

/// A running emulator. Dropping it stops the server.
pub struct Emulator {
    state: Arc<EmulatorState>,
    local_addr: SocketAddr,
    ca_path: Option<PathBuf>,
    shutdown: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<()>>,
}

impl Emulator {
    /// Starts over plain HTTP on a free loopback port.
    pub async fn start(config: EmulatorConfig) -> anyhow::Result<Self> {
        Self::start_with(config, ListenOptions::default()).await
    }

    /// Starts with explicit listen options.
    pub async fn start_with(config: EmulatorConfig, options: ListenOptions) -> anyhow::Result<Self> {
        let listener = TcpListener::bind(options.bind).await?;
        let local_addr = listener.local_addr()?;
        let scheme = if options.tls_self_signed_dir.is_some() { "https" } else { "http" };
        let base_url = match options.public_url {
            Some(url) => url,
            None => Url::parse(&format!("{scheme}://{local_addr}"))?,
        };
        let state = Arc::new(EmulatorState::new(config, base_url)?);
        let app = routes::router(state.clone());
        let (shutdown, stopped) = oneshot::channel::<()>();
        let stop = async move {
            let _ = stopped.await;
        };
        let (task, ca_path) = match options.tls_self_signed_dir {
            Some(dir) => {
                let (tls_config, ca_path) = tls::self_signed(&dir)?;
                let listener = tls::TlsListener::new(listener, tls_config)?.tap_io(|_| {});
                let service = app.into_make_service_with_connect_info::<SocketAddr>();
                let server = axum::serve(listener, service).with_graceful_shutdown(stop);
                (tokio::spawn(async move { log_exit(server.await) }), Some(ca_path))
            }
            None => {
                let service = app.into_make_service_with_connect_info::<SocketAddr>();
                let server = axum::serve(listener, service).with_graceful_shutdown(stop);
                (tokio::spawn(async move { log_exit(server.await) }), None)
            }
        };
        Ok(Self { state, local_addr, ca_path, shutdown: Some(shutdown), task: Some(task) })
    }

    /// The bound address.
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// The base URL, e.g. `http://127.0.0.1:40123` (no trailing slash): the `AUTHORITY_HOST`.
    pub fn base_url(&self) -> String {
        self.state.base().to_owned()
    }

    /// The tenant id.
    pub fn tenant_id(&self) -> Uuid {
        self.state.tenant_id
    }

    /// The authority of the tenant: `{base}/{tenant_id}`.
    pub fn authority(&self) -> String {
        format!("{}/{}", self.state.base(), self.state.tenant_id)
    }

    /// The v2.0 issuer of the tenant's tokens.
    pub fn issuer(&self) -> String {
        self.state.issuer()
    }

    /// The Graph base URL (`GRAPH_ENDPOINT`), e.g. `http://127.0.0.1:40123/graph`.
    pub fn graph_endpoint(&self) -> String {
        format!("{}/graph", self.state.base())
    }

    /// The base URL of the API app registration `app` exposes (`api://{app}`): `GET {this}/me`
    /// answers tokens issued for that audience with `access_as_user`.
    pub fn api_endpoint(&self, app: &str) -> String {
        format!("{}/api/{app}", self.state.base())
    }

    /// The CA certificate file, when serving HTTPS.
    pub fn ca_pem_path(&self) -> Option<&Path> {
        self.ca_path.as_deref()
    }

    /// The fault switches.
    pub fn faults(&self) -> &Faults {
        &self.state.faults
    }

    /// The directory's users.
    pub fn users(&self) -> Vec<User> {
        self.state.users.iter().map(|u| u.user.clone()).collect()
    }

    /// The object id of a user, by sign-in name.
    pub fn user_object_id(&self, upn: &str) -> Option<Uuid> {
        self.state.user_by_upn(upn).map(|u| u.oid)
    }

    /// The registered clients.
    pub fn clients(&self) -> Vec<ClientRegistration> {
        self.state.clients()
    }

    /// Changes a client's registration (e.g. adds a redirect URI once the app's port is known).
    pub fn update_client(&self, client_id: &str, change: impl FnOnce(&mut ClientRegistration)) -> bool {
        let mut clients = self.state.clients.write().unwrap_or_else(std::sync::PoisonError::into_inner);
        match clients.iter_mut().find(|c| c.client_id == client_id) {
            Some(client) => {
                change(client);
                true
            }
            None => false,
        }
    }

    /// Signs with a new key from now on (the old one stays in the JWKS); returns the new `kid`.
    pub fn rotate_signing_key(&self) -> anyhow::Result<String> {
        self.state.rotate_signing_key()
    }

    /// Revokes every refresh token of a user; returns how many were active, `None` if no such user.
    pub fn revoke_refresh_tokens(&self, upn: &str) -> Option<usize> {
        self.state.revoke_refresh_tokens(upn)
    }

    /// Moves the emulator's clock forward (codes, tokens and sign-in pages expire sooner).
    pub fn advance_clock(&self, by: Duration) {
        self.state.clock.advance(by.as_secs() as i64);
    }

    /// How many Graph requests have arrived (counted on arrival, before latency or faults): lets a
    /// test know a request is in flight.
    pub fn graph_requests_received(&self) -> u64 {
        self.state.graph_requests.load(std::sync::atomic::Ordering::SeqCst)
    }

    /// The object id of an application's service principal: the `oid` of its own tokens (client
    /// credentials).
    pub fn service_principal_id(&self, client_id: &str) -> Uuid {
        crate::directory::service_principal_id(client_id)
    }

    /// How many token endpoint requests have arrived, whatever their outcome (counted on arrival,
    /// before latency or faults): how a test sees requests that were refused, which issue nothing.
    pub fn token_requests_received(&self) -> u64 {
        self.state.token_requests.load(std::sync::atomic::Ordering::SeqCst)
    }

    /// The App Service-style managed identity endpoint (`IDENTITY_ENDPOINT`).
    pub fn identity_endpoint(&self) -> String {
        format!("{}/_identity/token", self.state.base())
    }

    /// The secret the identity endpoint requires as `X-IDENTITY-HEADER` (`IDENTITY_HEADER`).
    pub fn identity_header(&self) -> String {
        self.state.identity_header.clone()
    }

    /// How many tokens the identity endpoint has issued.
    pub fn identity_tokens_issued(&self) -> u64 {
        self.state.identity_tokens_issued.load(std::sync::atomic::Ordering::SeqCst)
    }

    /// Every code, token and session id the emulator has handed out: for leak checks.
    pub fn issued_secrets(&self) -> Vec<String> {
        self.state.grants().issued.clone()
    }

    /// Stops the server and waits for it.
    pub async fn shutdown(mut self) {
        if let Some(shutdown) = self.shutdown.take() {
            let _ = shutdown.send(());
        }
        if let Some(task) = self.task.take() {
            let _ = task.await;
        }
    }
}

impl Drop for Emulator {
    fn drop(&mut self) {
        if let Some(shutdown) = self.shutdown.take() {
            let _ = shutdown.send(());
        }
    }
}

fn log_exit(result: std::io::Result<()>) {
    if let Err(err) = result {
        tracing::error!(error = %err, "emulator server stopped");
    }
}
