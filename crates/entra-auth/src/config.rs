//! What the relying party needs to know: four things to say, everything else defaulted.

use std::time::Duration;

use url::Url;
use uuid::Uuid;

use crate::authority::Authority;
use crate::credential::ClientCredential;
use crate::pending_sign_in::PENDING_SIGN_IN_LIFETIME;

/// Microsoft Graph in the global cloud.
pub const DEFAULT_GRAPH_ENDPOINT: &str = "https://graph.microsoft.com";
/// Clock skew allowed on ID tokens by default (MSAL uses the same).
pub const DEFAULT_CLOCK_LEEWAY: Duration = Duration::from_secs(120);

/// Configuration of an [`EntraClient`](crate::EntraClient).
///
/// [`EntraConfig::new`] takes what only you know; each `with_*` method changes one default.
///
/// ```
/// use entra_auth::{Authority, EntraConfig};
/// # fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let config = EntraConfig::new(
///     Authority::public_cloud("contoso.onmicrosoft.com".parse()?),
///     "00000000-0000-0000-0000-000000000001",
///     secrecy::SecretString::from("client secret value"),
///     "https://app.example/callback".parse()?,
/// )
/// .with_scopes(["User.Read"])
/// .with_profile_at_sign_in(true);
/// assert_eq!(config.post_logout_redirect_uri.as_str(), "https://app.example/callback");
/// # Ok(()) }
/// ```
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct EntraConfig {
    /// Login host + tenant.
    pub authority: Authority,
    /// Application (client) id.
    pub client_id: String,
    /// How the app authenticates at the token endpoint.
    pub credential: ClientCredential,
    /// The callback URL registered on the app registration; its path is the callback route.
    pub redirect_uri: Url,
    /// Resource scopes asked for at sign-in on top of `openid profile offline_access`, e.g.
    /// `User.Read`. Default: none.
    pub scopes: Vec<String>,
    /// Graph base URL. Default: [`DEFAULT_GRAPH_ENDPOINT`].
    pub graph_endpoint: Url,
    /// Whether sign-in loads the user's Graph profile (`GET /v1.0/me`, needs `User.Read`): then a
    /// Graph outage fails sign-in. Default: `false` (name and email come from the ID token).
    pub profile_at_sign_in: bool,
    /// Where Entra sends the browser after sign-out (it must be a registered redirect URI).
    /// Default: the redirect URI itself, which [`AuthRoutes`](crate::axum::AuthRoutes) serves as
    /// the landing that goes on to the page the sign-out asked for.
    pub post_logout_redirect_uri: Url,
    /// Clock skew allowed on ID tokens. Default: [`DEFAULT_CLOCK_LEEWAY`].
    pub clock_leeway: Duration,
    /// How long a started sign-in may take. Default: [`PENDING_SIGN_IN_LIFETIME`].
    pub pending_sign_in_lifetime: Duration,
    /// At most one JWKS refetch for an unknown `kid` per this interval. Default:
    /// [`crate::oidc::MIN_REFETCH_INTERVAL`].
    pub jwks_refetch_interval: Duration,
    /// How long one call to Entra, Graph or the identity endpoint may take in all. Default:
    /// [`DEFAULT_HTTP_TIMEOUT`].
    pub http_timeout: Duration,
    /// The tenants whose users may sign in; `None` accepts every tenant the authority accepts.
    /// Set it for `common`/`organizations` authorities (with those, anyone in any Entra tenant
    /// can otherwise sign in). Default: `None`.
    pub allowed_tenants: Option<Vec<Uuid>>,
    /// Client capabilities declared to Entra in every `claims` request (MSAL's
    /// `client_capabilities`): `cp1` says the app handles claims challenges, so resources apply
    /// continuous access evaluation to its tokens. Default: none.
    pub client_capabilities: Vec<String>,
    /// Whether the session keeps the raw ID token (for an upstream or API that wants it, e.g. a
    /// proxy's `X-MS-TOKEN-AAD-ID-TOKEN`). Default: `false` (its claims are kept, not the token).
    pub keep_id_token: bool,
}

/// How long one outbound call may take by default (connecting takes at most 5 s of it).
pub const DEFAULT_HTTP_TIMEOUT: Duration = Duration::from_secs(15);

impl EntraConfig {
    /// The four things Entra needs to know about the app; documented defaults for the rest.
    pub fn new(
        authority: Authority,
        client_id: impl Into<String>,
        credential: impl Into<ClientCredential>,
        redirect_uri: Url,
    ) -> Self {
        let mut post_logout_redirect_uri = redirect_uri.clone();
        post_logout_redirect_uri.set_query(None);
        post_logout_redirect_uri.set_fragment(None);
        Self {
            authority,
            client_id: client_id.into(),
            credential: credential.into(),
            redirect_uri,
            scopes: Vec::new(),
            graph_endpoint: Url::parse(DEFAULT_GRAPH_ENDPOINT).unwrap_or_else(|_| unreachable!("a valid constant")),
            profile_at_sign_in: false,
            post_logout_redirect_uri,
            clock_leeway: DEFAULT_CLOCK_LEEWAY,
            pending_sign_in_lifetime: PENDING_SIGN_IN_LIFETIME,
            jwks_refetch_interval: crate::jwks::MIN_REFETCH_INTERVAL,
            http_timeout: DEFAULT_HTTP_TIMEOUT,
            allowed_tenants: None,
            client_capabilities: Vec::new(),
            keep_id_token: false,
        }
    }

    /// Asks for these resource scopes at sign-in.
    pub fn with_scopes<I: IntoIterator<Item = S>, S: Into<String>>(mut self, scopes: I) -> Self {
        self.scopes = scopes.into_iter().map(Into::into).collect();
        self
    }

    /// Calls Graph at this base URL (a national cloud, or the emulator).
    pub fn with_graph_endpoint(mut self, endpoint: Url) -> Self {
        self.graph_endpoint = endpoint;
        self
    }

    /// Loads the Graph profile at sign-in (`User.Read` must be among the scopes).
    pub fn with_profile_at_sign_in(mut self, enabled: bool) -> Self {
        self.profile_at_sign_in = enabled;
        self
    }

    /// Sends the browser here after sign-out (register it on the app registration). Another URI
    /// than the callback forgoes `return_to` on sign-out and the after-sign-out page.
    pub fn with_post_logout_redirect_uri(mut self, uri: Url) -> Self {
        self.post_logout_redirect_uri = uri;
        self
    }

    /// Allows this much clock skew on ID tokens.
    pub fn with_clock_leeway(mut self, leeway: Duration) -> Self {
        self.clock_leeway = leeway;
        self
    }

    /// Lets a started sign-in take this long.
    pub fn with_pending_sign_in_lifetime(mut self, lifetime: Duration) -> Self {
        self.pending_sign_in_lifetime = lifetime;
        self
    }

    /// Gives up on an outbound call after `timeout`.
    pub fn with_http_timeout(mut self, timeout: Duration) -> Self {
        self.http_timeout = timeout;
        self
    }

    /// Lets only users of these tenants sign in (a sign-in from another tenant gets a 403 page).
    pub fn with_allowed_tenants(mut self, tenants: impl IntoIterator<Item = Uuid>) -> Self {
        self.allowed_tenants = Some(tenants.into_iter().collect());
        self
    }

    /// Declares client capabilities, e.g. `["cp1"]` for continuous access evaluation (the app
    /// must then handle claims challenges from the APIs it calls, as [`crate::GraphError`]'s
    /// `Unauthorized { claims }` reports them).
    pub fn with_client_capabilities<I: IntoIterator<Item = S>, S: Into<String>>(mut self, capabilities: I) -> Self {
        self.client_capabilities = capabilities.into_iter().map(Into::into).collect();
        self
    }

    /// Keeps the raw ID token in the session ([`crate::TokenSet::id_token`]).
    pub fn with_id_token_kept(mut self, keep: bool) -> Self {
        self.keep_id_token = keep;
        self
    }

    /// Whether users of `tenant` may sign in (the allow-list; the authority's own rule is checked
    /// with the ID token).
    pub fn allows_tenant(&self, tenant: Uuid) -> bool {
        self.allowed_tenants.as_ref().is_none_or(|allowed| allowed.contains(&tenant))
    }

    /// Refetches the JWKS for an unknown `kid` at most once per `interval`.
    pub fn with_jwks_refetch_interval(mut self, interval: Duration) -> Self {
        self.jwks_refetch_interval = interval;
        self
    }
}
