//! The settings of `serve` as they arrive (text from the environment, `.env` or flags), with their
//! defaults, each written once.

use clap::Args;
use entra_auth::{DEFAULT_GRAPH_ENDPOINT, PUBLIC_CLOUD_HOST as DEFAULT_AUTHORITY_HOST};

/// Where App Service (Linux) puts the private certificates named by WEBSITE_LOAD_CERTIFICATES.
const DEFAULT_CERTIFICATE_STORE: &str = "/var/ssl/private";
const DEFAULT_SCOPES: &str = "User.Read";
const DEFAULT_PORT: &str = "5001";
const DEFAULT_BIND_ADDRESS: &str = "0.0.0.0";
const DEFAULT_SESSION_STORE: &str = "memory";
const DEFAULT_MAX_SESSIONS: &str = "100000";
const DEFAULT_SESSION_IDLE_MINUTES: &str = "480";
const DEFAULT_SESSION_MAX_HOURS: &str = "24";
const DEFAULT_TRUST_FORWARDED_HEADERS: &str = "false";
const DEFAULT_LOG_FORMAT: &str = "text";
const DEFAULT_RUST_LOG: &str = "info";
const DEFAULT_UNAUTHENTICATED_ACTION: &str = "redirect";
const DEFAULT_UPSTREAM_TIMEOUT_SECONDS: &str = "60";
const DEFAULT_WEBSOCKET_CHECK_SECONDS: &str = "15";
/// Under the 8 KB that nginx, Apache and gunicorn allow one request header line by default, with
/// room for the name.
const DEFAULT_PRINCIPAL_MAX_BYTES: &str = "8000";

/// The settings of `serve`, each from the environment variable of the same name.
#[derive(Args, Debug, Clone)]
#[command(next_help_heading = "Settings (environment variables; a .env file in the working directory is read too)")]
pub struct Settings {
    /// Directory (tenant) ID of the app registration: a GUID, a verified domain, or
    /// common / organizations / consumers.
    #[arg(long = "tenant-id", env = "TENANT_ID", hide_env_values = true)]
    pub tenant_id: Option<String>,
    /// Application (client) ID of the app registration.
    #[arg(long = "client-id", env = "CLIENT_ID", hide_env_values = true)]
    pub client_id: Option<String>,
    /// Client secret value (Certificates & secrets). Never logged. Exactly one credential is
    /// set: this, a certificate, a managed identity or a workload identity token file.
    #[arg(long = "client-secret", env = "CLIENT_SECRET", hide_env_values = true)]
    pub client_secret: Option<String>,
    /// A certificate credential instead of a secret: a PKCS#12 (.pfx/.p12) file, or PEM with the
    /// certificate (and the key, unless CLIENT_CERTIFICATE_KEY_PATH names it).
    #[arg(long = "client-certificate-path", env = "CLIENT_CERTIFICATE_PATH")]
    pub client_certificate_path: Option<String>,
    /// The PEM private key of CLIENT_CERTIFICATE_PATH, when in its own file.
    #[arg(long = "client-certificate-key-path", env = "CLIENT_CERTIFICATE_KEY_PATH")]
    pub client_certificate_key_path: Option<String>,
    /// Password of a PKCS#12 CLIENT_CERTIFICATE_PATH. Never logged.
    #[arg(long = "client-certificate-password", env = "CLIENT_CERTIFICATE_PASSWORD", hide_env_values = true)]
    pub client_certificate_password: Option<String>,
    /// On App Service: the thumbprint of a certificate loaded with WEBSITE_LOAD_CERTIFICATES
    /// (read from CLIENT_CERTIFICATE_STORE/<thumbprint>.p12).
    #[arg(long = "client-certificate-thumbprint", env = "CLIENT_CERTIFICATE_THUMBPRINT")]
    pub client_certificate_thumbprint: Option<String>,
    /// Where App Service puts loaded private certificates.
    #[arg(long = "client-certificate-store", env = "CLIENT_CERTIFICATE_STORE", default_value = DEFAULT_CERTIFICATE_STORE)]
    pub client_certificate_store: String,
    /// No secret at all: the client id of a user-assigned managed identity that the app
    /// registration trusts as a federated credential (App Service sets IDENTITY_ENDPOINT and
    /// IDENTITY_HEADER).
    #[arg(long = "managed-identity-client-id", env = "MANAGED_IDENTITY_CLIENT_ID")]
    pub managed_identity_client_id: Option<String>,
    /// Set by App Service when the app has a managed identity.
    #[arg(long = "identity-endpoint", env = "IDENTITY_ENDPOINT", hide = true)]
    pub identity_endpoint: Option<String>,
    /// Set by App Service when the app has a managed identity. Never logged.
    #[arg(long = "identity-header", env = "IDENTITY_HEADER", hide = true, hide_env_values = true)]
    pub identity_header: Option<String>,
    /// No secret at all: a workload identity token file (set by AKS workload identity).
    #[arg(long = "federated-token-file", env = "AZURE_FEDERATED_TOKEN_FILE")]
    pub federated_token_file: Option<String>,
    /// The callback URL registered on the app registration, e.g. https://<site>/callback.
    #[arg(long = "redirect-uri", env = "REDIRECT_URI")]
    pub redirect_uri: Option<String>,
    /// Login host: https://login.microsoftonline.com, a national cloud, or the emulator.
    #[arg(long = "authority-host", env = "AUTHORITY_HOST", default_value = DEFAULT_AUTHORITY_HOST)]
    pub authority_host: String,
    /// Microsoft Graph base URL (national clouds differ; the emulator reports its own).
    #[arg(long = "graph-endpoint", env = "GRAPH_ENDPOINT", default_value = DEFAULT_GRAPH_ENDPOINT)]
    pub graph_endpoint: String,
    /// Space-separated Graph scopes; "openid profile offline_access" are always added.
    #[arg(long = "scopes", env = "SCOPES", default_value = DEFAULT_SCOPES)]
    pub scopes: String,
    /// Tenant ids whose users may sign in, comma- or space-separated, or * for every tenant.
    /// Required when TENANT_ID is common, organizations or consumers.
    #[arg(long = "allowed-tenants", env = "ALLOWED_TENANTS")]
    pub allowed_tenants: Option<String>,
    /// App role values (any of them lets a user in), comma- or space-separated. Default: no role
    /// needed.
    #[arg(long = "allowed-roles", env = "ALLOWED_ROLES")]
    pub allowed_roles: Option<String>,
    /// Group object ids (membership of any of them lets a user in), comma- or space-separated.
    /// Default: no group needed.
    #[arg(long = "allowed-groups", env = "ALLOWED_GROUPS")]
    pub allowed_groups: Option<String>,
    /// Proxy mode: the app to put sign-in in front of (http://host:port, or https://host:port,
    /// its certificate checked as for Entra: the system's CAs or SSL_CERT_FILE's). Every request
    /// that is not one of ours is forwarded there, with the signed-in user's identity headers.
    #[arg(long = "upstream-url", env = "UPSTREAM_URL")]
    pub upstream_url: Option<String>,
    /// Proxy mode, an https:// UPSTREAM_URL: a PEM file of the CA certificates that may sign the
    /// upstream's certificate (a private CA), trusted for the upstream only and in place of the
    /// system's CAs. Default: the system's CAs (or SSL_CERT_FILE's) and Mozilla's.
    #[arg(long = "upstream-ca-file", env = "UPSTREAM_CA_FILE")]
    pub upstream_ca_file: Option<String>,
    /// Proxy mode, an https:// UPSTREAM_URL that asks for a client certificate (mutual TLS): the
    /// certificate the proxy presents, a PKCS#12 (.pfx/.p12) file or PEM with the certificate (and
    /// its chain) and the key (unless UPSTREAM_CLIENT_CERTIFICATE_KEY_PATH names it).
    #[arg(long = "upstream-client-certificate-path", env = "UPSTREAM_CLIENT_CERTIFICATE_PATH")]
    pub upstream_client_certificate_path: Option<String>,
    /// The PEM private key of UPSTREAM_CLIENT_CERTIFICATE_PATH, when in its own file.
    #[arg(long = "upstream-client-certificate-key-path", env = "UPSTREAM_CLIENT_CERTIFICATE_KEY_PATH")]
    pub upstream_client_certificate_key_path: Option<String>,
    /// Password of a PKCS#12 UPSTREAM_CLIENT_CERTIFICATE_PATH. Never logged.
    #[arg(
        long = "upstream-client-certificate-password",
        env = "UPSTREAM_CLIENT_CERTIFICATE_PASSWORD",
        hide_env_values = true
    )]
    pub upstream_client_certificate_password: Option<String>,
    /// Proxy mode: pass the client's Host header to the app behind (true), or send the
    /// upstream's own, from UPSTREAM_URL (false: for an app that answers only to its own name,
    /// such as another App Service or Container Apps site); X-Forwarded-Host has the client's.
    #[arg(long = "proxy-pass-host-header", env = "PROXY_PASS_HOST_HEADER", default_value = "true")]
    pub proxy_pass_host_header: String,
    /// Proxy mode: the HTTP version spoken to the app behind, 1.1 or 2 (HTTP/2: with prior
    /// knowledge to an http:// UPSTREAM_URL, negotiated by TLS to an https:// one; for gRPC
    /// services, which need it end to end). WebSocket needs 1.1.
    #[arg(long = "upstream-http-version", env = "UPSTREAM_HTTP_VERSION", default_value = "1.1")]
    pub upstream_http_version: String,
    /// Proxy mode: where our own routes are: / (/login, /logout, /healthz, /readyz, /metrics) or
    /// /.auth (all under /.auth/, as App Service authentication's, for an app with paths of those
    /// names).
    #[arg(long = "proxy-own-routes", env = "PROXY_OWN_ROUTES", default_value = "/")]
    pub proxy_own_routes: String,
    /// Proxy mode: app roles needed for some paths, on top of ALLOWED_ROLES: PATH=ROLE,ROLE rules
    /// separated by ';' (/admin/*=Admin; /reports/*=Reader,Admin), one of a rule's roles needed.
    #[arg(long = "proxy-path-roles", env = "PROXY_PATH_ROLES")]
    pub proxy_path_roles: Option<String>,
    /// Proxy mode: groups needed for some paths, on top of ALLOWED_GROUPS: PATH=GROUP,GROUP rules
    /// (group object ids) separated by ';'.
    #[arg(long = "proxy-path-groups", env = "PROXY_PATH_GROUPS")]
    pub proxy_path_groups: Option<String>,
    /// Proxy mode: paths anyone may reach without signing in, comma-separated; a trailing * matches
    /// every path under it (/static/*, /api/public/*).
    #[arg(long = "proxy-anonymous-paths", env = "PROXY_ANONYMOUS_PATHS")]
    pub proxy_anonymous_paths: Option<String>,
    /// Proxy mode, requests without a session: redirect (browser navigations go to sign-in, other
    /// requests get 401), allow (forwarded without identity, like App Service's "Allow
    /// unauthenticated requests"), or 401.
    #[arg(long = "proxy-unauthenticated-action", env = "PROXY_UNAUTHENTICATED_ACTION", default_value = DEFAULT_UNAUTHENTICATED_ACTION)]
    pub proxy_unauthenticated_action: String,
    /// Proxy mode: also send the user's access and ID tokens upstream (X-MS-TOKEN-AAD-ACCESS-TOKEN,
    /// X-MS-TOKEN-AAD-ID-TOKEN), for upstreams that call APIs themselves.
    #[arg(long = "proxy-pass-tokens", env = "PROXY_PASS_TOKENS", default_value = "false")]
    pub proxy_pass_tokens: String,
    /// Proxy mode, with PROXY_PASS_TOKENS: the scopes (one resource's, space-separated, e.g.
    /// api://<app id>/user_impersonation) the access token passed upstream is for, as App Service
    /// authentication's `scope=` login parameter. Default: the sign-in's token (SCOPES, Graph).
    #[arg(long = "proxy-access-token-scopes", env = "PROXY_ACCESS_TOKEN_SCOPES")]
    pub proxy_access_token_scopes: Option<String>,
    /// Proxy mode: origins of other pages (https://admin.example.com), comma-separated, whose form
    /// posts, fetch calls and WebSocket connections may reach the app behind as the signed-in user.
    /// Default: only the app's own pages' (see docs/SECURITY.md, cross-origin requests).
    #[arg(long = "proxy-trusted-origins", env = "PROXY_TRUSTED_ORIGINS")]
    pub proxy_trusted_origins: Option<String>,
    /// Proxy mode: applications (client ids, comma-separated, or * for any application of an
    /// allowed tenant) whose access tokens for this app, sent as Authorization: Bearer, are
    /// accepted in place of a session. Default: none (every request needs a session).
    #[arg(long = "proxy-bearer-clients", env = "PROXY_BEARER_CLIENTS")]
    pub proxy_bearer_clients: Option<String>,
    /// Proxy mode: audiences accepted in those tokens besides CLIENT_ID and api://CLIENT_ID (the
    /// app registration's other Application ID URIs), comma-separated.
    #[arg(long = "proxy-bearer-audiences", env = "PROXY_BEARER_AUDIENCES")]
    pub proxy_bearer_audiences: Option<String>,
    /// Proxy mode: the groups (object ids, comma-separated) the app behind is told about, of those
    /// the user is in. Default: all of the user's groups.
    #[arg(long = "proxy-principal-groups", env = "PROXY_PRINCIPAL_GROUPS")]
    pub proxy_principal_groups: Option<String>,
    /// Proxy mode: the most bytes X-MS-CLIENT-PRINCIPAL may take; a user whose groups would make it
    /// larger gets Entra's groups overage claim there instead of the list (the app behind's front
    /// end would refuse every request of that user: 8 KB per header is a common limit).
    #[arg(long = "proxy-principal-max-bytes", env = "PROXY_PRINCIPAL_MAX_BYTES", default_value = DEFAULT_PRINCIPAL_MAX_BYTES)]
    pub proxy_principal_max_bytes: String,
    /// Proxy mode: seconds to wait for the upstream's response headers once it has the whole
    /// request (then 504); also how long a request body may go without a byte (then 408).
    #[arg(long = "upstream-timeout-seconds", env = "UPSTREAM_TIMEOUT_SECONDS", default_value = DEFAULT_UPSTREAM_TIMEOUT_SECONDS)]
    pub upstream_timeout_seconds: String,
    /// Proxy mode: how often, in seconds, an open WebSocket (any upgraded connection) checks that
    /// the session it was opened with still exists; once the session has ended (signed out here or
    /// on another instance, front-channel logout, expiry) the connection is closed.
    #[arg(long = "proxy-websocket-check-seconds", env = "PROXY_WEBSOCKET_CHECK_SECONDS", default_value = DEFAULT_WEBSOCKET_CHECK_SECONDS)]
    pub proxy_websocket_check_seconds: String,
    /// A downstream API the app calls as the user (shown at /downstream): its base URL.
    #[arg(long = "downstream-api-url", env = "DOWNSTREAM_API_URL")]
    pub downstream_api_url: Option<String>,
    /// The scopes its tokens need, space-separated, e.g. api://<app id>/access_as_user (asked
    /// for, with consent, only when the page is opened).
    #[arg(long = "downstream-api-scopes", env = "DOWNSTREAM_API_SCOPES")]
    pub downstream_api_scopes: Option<String>,
    /// Port to listen on.
    #[arg(long = "port", env = "PORT", default_value = DEFAULT_PORT)]
    pub port: String,
    /// Address to listen on.
    #[arg(long = "bind-address", env = "BIND_ADDRESS", default_value = DEFAULT_BIND_ADDRESS)]
    pub bind_address: String,
    /// Where Entra sends the browser after sign-out (default: REDIRECT_URI, whose callback sends
    /// it on to the page the sign-out named). Must be a registered redirect URI.
    #[arg(long = "post-logout-redirect-uri", env = "POST_LOGOUT_REDIRECT_URI")]
    pub post_logout_redirect_uri: Option<String>,
    /// Secret(s) for sealing session records at rest, comma-separated (first seals, all open).
    #[arg(long = "session-secret", env = "SESSION_SECRET", hide_env_values = true)]
    pub session_secret: Option<String>,
    /// Where sessions live: memory (one instance), or a Redis URL (redis://, rediss:// for Azure
    /// Cache for Redis over TLS) shared by every instance. Redis requires SESSION_SECRET.
    #[arg(long = "session-store", env = "SESSION_STORE", default_value = DEFAULT_SESSION_STORE, hide_env_values = true)]
    pub session_store: String,
    /// Redis password, when not in the SESSION_STORE URL.
    #[arg(long = "redis-password", env = "REDIS_PASSWORD", hide_env_values = true)]
    pub redis_password: Option<String>,
    /// Most sessions the memory store holds; the least recently used are evicted beyond it.
    #[arg(long = "max-sessions", env = "MAX_SESSIONS", default_value = DEFAULT_MAX_SESSIONS)]
    pub max_sessions: String,
    /// Minutes of inactivity after which a session ends.
    #[arg(long = "session-idle-minutes", env = "SESSION_IDLE_MINUTES", default_value = DEFAULT_SESSION_IDLE_MINUTES)]
    pub session_idle_minutes: String,
    /// Hours after which a sign-in ends however active the user is (then a new sign-in, silent
    /// while the Entra session lasts).
    #[arg(long = "session-max-hours", env = "SESSION_MAX_HOURS", default_value = DEFAULT_SESSION_MAX_HOURS)]
    pub session_max_hours: String,
    /// Behind a TLS-terminating proxy (App Service): build absolute URLs from X-Forwarded-Proto
    /// and X-Forwarded-Host. Off by default; never used for REDIRECT_URI.
    #[arg(long = "trust-forwarded-headers", env = "TRUST_FORWARDED_HEADERS", default_value = DEFAULT_TRUST_FORWARDED_HEADERS)]
    pub trust_forwarded_headers: String,
    /// Log format: text or json.
    #[arg(long = "log-format", env = "LOG_FORMAT", default_value = DEFAULT_LOG_FORMAT)]
    pub log_format: String,
    /// Log filter, e.g. info or entra_auth=debug,info (read by the logger).
    #[arg(long = "rust-log", env = "RUST_LOG", default_value = DEFAULT_RUST_LOG)]
    pub rust_log: String,
    /// Serves `/metrics` (Prometheus) to scrapers sending `Authorization: Bearer <this>`; unset,
    /// there is no `/metrics` (in proxy mode the path is then the app behind's). Never logged.
    #[arg(long = "metrics-token", env = "METRICS_TOKEN", hide_env_values = true)]
    pub metrics_token: Option<String>,
}

/// A setting's value when it is set: trimmed, and not empty (an empty app setting is unset).
pub(crate) fn set(value: &Option<String>) -> Option<&str> {
    value.as_deref().map(str::trim).filter(|value| !value.is_empty())
}

impl Default for Settings {
    /// Nothing set: the documented defaults, no required value.
    fn default() -> Self {
        Self {
            tenant_id: None,
            client_id: None,
            client_secret: None,
            client_certificate_path: None,
            client_certificate_key_path: None,
            client_certificate_password: None,
            client_certificate_thumbprint: None,
            client_certificate_store: DEFAULT_CERTIFICATE_STORE.to_owned(),
            managed_identity_client_id: None,
            identity_endpoint: None,
            identity_header: None,
            federated_token_file: None,
            redirect_uri: None,
            allowed_tenants: None,
            allowed_roles: None,
            allowed_groups: None,
            upstream_url: None,
            downstream_api_url: None,
            downstream_api_scopes: None,
            proxy_anonymous_paths: None,
            proxy_unauthenticated_action: DEFAULT_UNAUTHENTICATED_ACTION.to_owned(),
            proxy_pass_tokens: "false".to_owned(),
            proxy_pass_host_header: "true".to_owned(),
            upstream_http_version: "1.1".to_owned(),
            proxy_own_routes: "/".to_owned(),
            proxy_path_roles: None,
            proxy_path_groups: None,
            upstream_ca_file: None,
            upstream_client_certificate_path: None,
            upstream_client_certificate_key_path: None,
            upstream_client_certificate_password: None,
            proxy_access_token_scopes: None,
            proxy_trusted_origins: None,
            proxy_principal_groups: None,
            proxy_bearer_clients: None,
            proxy_bearer_audiences: None,
            proxy_principal_max_bytes: DEFAULT_PRINCIPAL_MAX_BYTES.to_owned(),
            upstream_timeout_seconds: DEFAULT_UPSTREAM_TIMEOUT_SECONDS.to_owned(),
            proxy_websocket_check_seconds: DEFAULT_WEBSOCKET_CHECK_SECONDS.to_owned(),
            post_logout_redirect_uri: None,
            session_secret: None,
            redis_password: None,
            authority_host: DEFAULT_AUTHORITY_HOST.to_owned(),
            graph_endpoint: DEFAULT_GRAPH_ENDPOINT.to_owned(),
            scopes: DEFAULT_SCOPES.to_owned(),
            port: DEFAULT_PORT.to_owned(),
            bind_address: DEFAULT_BIND_ADDRESS.to_owned(),
            session_store: DEFAULT_SESSION_STORE.to_owned(),
            max_sessions: DEFAULT_MAX_SESSIONS.to_owned(),
            session_idle_minutes: DEFAULT_SESSION_IDLE_MINUTES.to_owned(),
            session_max_hours: DEFAULT_SESSION_MAX_HOURS.to_owned(),
            log_format: DEFAULT_LOG_FORMAT.to_owned(),
            trust_forwarded_headers: DEFAULT_TRUST_FORWARDED_HEADERS.to_owned(),
            rust_log: DEFAULT_RUST_LOG.to_owned(),
            metrics_token: None,
        }
    }
}
