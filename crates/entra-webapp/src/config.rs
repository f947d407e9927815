//! Settings: read from the environment (and `.env`), parsed once into types, every problem
//! reported at once with the variable's name and the fix.

use std::fmt;
use std::net::IpAddr;
use std::time::Duration;

use clap::Args;
use entra_auth::{Authority, Tenant};
use secrecy::SecretString;
use url::Url;

const DEFAULT_AUTHORITY_HOST: &str = "https://login.microsoftonline.com";
const DEFAULT_GRAPH_ENDPOINT: &str = "https://graph.microsoft.com";
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
    /// Client secret value (Certificates & secrets). Never logged.
    #[arg(long = "client-secret", env = "CLIENT_SECRET", hide_env_values = true)]
    pub client_secret: Option<String>,
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
    /// Port to listen on.
    #[arg(long = "port", env = "PORT", default_value = DEFAULT_PORT)]
    pub port: String,
    /// Address to listen on.
    #[arg(long = "bind-address", env = "BIND_ADDRESS", default_value = DEFAULT_BIND_ADDRESS)]
    pub bind_address: String,
    /// Where Entra sends the browser after sign-out (default: the root of REDIRECT_URI's site).
    /// Must be registered on the app registration.
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
}

/// Where sessions live.
#[derive(Debug)]
pub enum SessionStoreConfig {
    /// In this process, at most this many.
    Memory { max_sessions: usize },
    /// In Redis at this URL (it may hold a password).
    Redis { url: SecretString },
}

impl Default for Settings {
    /// Nothing set: the documented defaults, no required value.
    fn default() -> Self {
        Self {
            tenant_id: None,
            client_id: None,
            client_secret: None,
            redirect_uri: None,
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
        }
    }
}

/// How logs are written.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LogFormat {
    /// Human-readable lines.
    Text,
    /// One JSON object per line.
    Json,
}

/// The validated configuration. Its `Debug` shows secrets as `[REDACTED]`.
#[derive(Debug)]
pub struct AppConfig {
    pub authority: Authority,
    pub client_id: String,
    pub client_secret: SecretString,
    pub redirect_uri: Url,
    pub graph_endpoint: Url,
    pub scopes: Vec<String>,
    pub bind_address: IpAddr,
    pub port: u16,
    pub post_logout_redirect_uri: Url,
    pub session_secrets: Vec<SecretString>,
    pub session_store: SessionStoreConfig,
    pub session_idle: Duration,
    /// `SESSION_MAX_HOURS`.
    pub session_max_lifetime: Duration,
    pub log_format: LogFormat,
    pub log_filter: String,
    pub trust_forwarded_headers: bool,
    /// Not a setting: ten minutes, as Entra's codes; tests shorten it.
    pub pending_sign_in_lifetime: Duration,
    /// Not a setting: at most one JWKS refetch for an unknown key per this interval.
    pub jwks_refetch_interval: Duration,
    /// Not settings: how long connections may take and how many there may be.
    pub server_limits: ServerLimits,
}

/// What a client may cost the server before it is cut off.
#[derive(Clone, Copy, Debug)]
pub struct ServerLimits {
    /// A client must send its whole request head within this (slowloris). The timer starts
    /// whenever a connection waits for a request head, so it also closes idle kept-alive
    /// connections.
    pub header_read_timeout: Duration,
    /// Connections served at once; further ones wait in the kernel's accept queue.
    pub max_connections: usize,
}

impl Default for ServerLimits {
    fn default() -> Self {
        Self { header_read_timeout: Duration::from_secs(10), max_connections: 1024 }
    }
}

impl AppConfig {
    /// Whether the app is reached over https (cookies get `Secure` and `__Host-`).
    pub fn is_https(&self) -> bool {
        self.redirect_uri.scheme() == "https"
    }
}

/// One bad setting.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigProblem {
    pub variable: &'static str,
    pub problem: String,
}

/// Every bad setting at once.
#[derive(Debug)]
pub struct ConfigErrors(pub Vec<ConfigProblem>);

impl fmt::Display for ConfigErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "entra-webapp cannot start: {} setting(s) need fixing:", self.0.len())?;
        for problem in &self.0 {
            writeln!(f, "  - {}: {}", problem.variable, problem.problem)?;
        }
        write!(f, "Set them as environment variables (or in .env); `entra-webapp serve --help` lists every setting.")
    }
}

impl std::error::Error for ConfigErrors {}

struct Problems(Vec<ConfigProblem>);

impl Problems {
    fn add(&mut self, variable: &'static str, problem: impl Into<String>) {
        self.0.push(ConfigProblem { variable, problem: problem.into() });
    }

    /// A required value: present, non-empty, not an unresolved Key Vault reference.
    fn required(&mut self, variable: &'static str, value: &Option<String>, how_to_get: &str) -> Option<String> {
        match value.as_deref().map(str::trim) {
            None | Some("") => {
                self.add(variable, format!("is not set. {how_to_get}"));
                None
            }
            Some(value) => self.resolved(variable, value),
        }
    }

    /// App Service leaves a Key Vault reference it cannot resolve as the literal text.
    fn resolved(&mut self, variable: &'static str, value: &str) -> Option<String> {
        if value.starts_with("@Microsoft.KeyVault(") {
            self.add(
                variable,
                "is still a literal @Microsoft.KeyVault(...) reference: App Service could not resolve it. Give the web app's managed identity 'get' access to the secret (Key Vault Secrets User) and check the reference's SecretUri.",
            );
            return None;
        }
        Some(value.to_owned())
    }

    fn url(&mut self, variable: &'static str, value: &str, example: &str) -> Option<Url> {
        match Url::parse(value.trim()) {
            Ok(url) if matches!(url.scheme(), "http" | "https") && url.host().is_some() => Some(url),
            Ok(_) => {
                self.add(variable, format!("'{value}' is not an http(s) URL. Example: {example}"));
                None
            }
            Err(_) => {
                self.add(variable, format!("'{value}' is not an absolute URL. Example: {example}"));
                None
            }
        }
    }

    /// Entra accepts plain http only for localhost redirect URIs; we hold every URL to that.
    fn https_unless_loopback(&mut self, variable: &'static str, url: &Url) -> bool {
        let loopback = matches!(url.host_str(), Some("localhost" | "127.0.0.1" | "[::1]"));
        if url.scheme() == "http" && !loopback {
            self.add(
                variable,
                format!(
                    "'{url}' uses http for a host other than localhost; Entra ID rejects that. Use https://{}{}",
                    url.host_str().unwrap_or("<host>"),
                    url.path()
                ),
            );
            return false;
        }
        true
    }
}

fn is_loopback(url: &Url) -> bool {
    match url.host() {
        // redis:// is not a special scheme: its host arrives as text, IP addresses included.
        Some(url::Host::Domain(domain)) => {
            domain.eq_ignore_ascii_case("localhost")
                || domain
                    .trim_start_matches('[')
                    .trim_end_matches(']')
                    .parse::<IpAddr>()
                    .is_ok_and(|ip| ip.is_loopback())
        }
        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
        None => false,
    }
}

impl Settings {
    /// Parses and validates everything, reporting every problem at once.
    pub fn validate(&self) -> Result<AppConfig, ConfigErrors> {
        let mut problems = Problems(Vec::new());

        let tenant = problems
            .required(
                "TENANT_ID",
                &self.tenant_id,
                "Set it to the Directory (tenant) ID on the app registration's Overview page.",
            )
            .and_then(|value| match value.parse::<Tenant>() {
                Ok(tenant) => Some(tenant),
                Err(err) => {
                    problems.add("TENANT_ID", err.to_string());
                    None
                }
            });
        let client_id = problems
            .required("CLIENT_ID", &self.client_id, "Set it to the Application (client) ID on the app registration's Overview page.")
            .and_then(|value| match uuid::Uuid::parse_str(&value) {
                Ok(_) => Some(value),
                Err(_) => {
                    problems.add("CLIENT_ID", format!("'{value}' is not a GUID; use the Application (client) ID from the app registration's Overview page."));
                    None
                }
            });
        let client_secret = problems.required(
            "CLIENT_SECRET",
            &self.client_secret,
            "Create one under Certificates & secrets on the app registration and set its Value.",
        );
        let redirect_uri = problems
            .required(
                "REDIRECT_URI",
                &self.redirect_uri,
                "Set it to the callback URL registered on the app registration, e.g. https://<site>/callback.",
            )
            .and_then(|value| problems.url("REDIRECT_URI", &value, "https://<site>/callback"))
            .filter(|url| {
                if url.fragment().is_some() {
                    problems.add("REDIRECT_URI", "must not contain a #fragment.");
                    return false;
                }
                problems.https_unless_loopback("REDIRECT_URI", url)
            });
        let authority_host = problems
            .resolved("AUTHORITY_HOST", &self.authority_host)
            .and_then(|value| problems.url("AUTHORITY_HOST", &value, "https://login.microsoftonline.com"))
            .filter(|url| problems.https_unless_loopback("AUTHORITY_HOST", url));
        let graph_endpoint = problems
            .resolved("GRAPH_ENDPOINT", &self.graph_endpoint)
            .and_then(|value| problems.url("GRAPH_ENDPOINT", &value, "https://graph.microsoft.com"))
            .filter(|url| problems.https_unless_loopback("GRAPH_ENDPOINT", url));
        let scopes: Vec<String> = self.scopes.split_whitespace().map(str::to_owned).collect();
        if scopes.iter().any(|s| s.contains(',')) {
            problems.add("SCOPES", "separate scopes with spaces, not commas (e.g. 'User.Read Mail.Read').");
        }
        let port = match self.port.trim().parse::<u16>() {
            Ok(port) => Some(port),
            Err(_) => {
                problems.add("PORT", format!("'{}' is not a port number (0-65535).", self.port));
                None
            }
        };
        let bind_address = match self.bind_address.trim().parse::<IpAddr>() {
            Ok(address) => Some(address),
            Err(_) => {
                problems.add(
                    "BIND_ADDRESS",
                    format!("'{}' is not an IP address; use 0.0.0.0 (all interfaces) or 127.0.0.1.", self.bind_address),
                );
                None
            }
        };
        let post_logout_redirect_uri = match (&self.post_logout_redirect_uri, &redirect_uri) {
            (Some(value), _) if !value.trim().is_empty() => problems
                .resolved("POST_LOGOUT_REDIRECT_URI", value)
                .and_then(|value| problems.url("POST_LOGOUT_REDIRECT_URI", &value, "https://<site>/"))
                .filter(|url| problems.https_unless_loopback("POST_LOGOUT_REDIRECT_URI", url)),
            (_, Some(redirect)) => redirect.join("/").ok(),
            _ => None,
        };
        let session_secrets: Vec<SecretString> = match &self.session_secret {
            Some(value) if !value.trim().is_empty() => match problems.resolved("SESSION_SECRET", value) {
                Some(value) => {
                    let secrets: Vec<&str> = value.split(',').map(str::trim).collect();
                    if secrets.iter().any(|s| s.len() < 32) {
                        problems.add("SESSION_SECRET", "each comma-separated secret must be at least 32 characters; generate one with: openssl rand -base64 48");
                    }
                    secrets.into_iter().map(|s| SecretString::from(s.to_owned())).collect()
                }
                None => Vec::new(),
            },
            _ => Vec::new(),
        };
        let max_sessions = match self.max_sessions.trim().parse::<usize>() {
            Ok(limit) if limit > 0 => Some(limit),
            _ => {
                problems.add("MAX_SESSIONS", format!("'{}' is not a positive number.", self.max_sessions));
                None
            }
        };
        let session_store = match problems.resolved("SESSION_STORE", self.session_store.trim()) {
            Some(value) if value.eq_ignore_ascii_case("memory") => {
                max_sessions.map(|max_sessions| SessionStoreConfig::Memory { max_sessions })
            }
            Some(value) => match Url::parse(&value) {
                Ok(mut url) if matches!(url.scheme(), "redis" | "rediss") && url.host().is_some() => {
                    if url.scheme() == "redis" && !is_loopback(&url) {
                        problems.add(
                            "SESSION_STORE",
                            format!("'redis://' to {} would send sealed sessions and the Redis password in clear over the network; use rediss:// (TLS, port 6380 on Azure Cache for Redis). Plain redis:// is accepted for localhost only.", url.host_str().unwrap_or("the host")),
                        );
                    }
                    if let Some(password) = self.redis_password.as_deref().filter(|p| !p.is_empty())
                        && url.set_password(Some(password)).is_err()
                    {
                        problems.add("REDIS_PASSWORD", "cannot be combined with the SESSION_STORE URL.");
                    }
                    if session_secrets.is_empty() {
                        problems.add(
                            "SESSION_SECRET",
                            "is required with a Redis SESSION_STORE: every instance must seal and open the same session records, across restarts. Generate one with: openssl rand -base64 48",
                        );
                    }
                    Some(SessionStoreConfig::Redis { url: SecretString::from(url.to_string()) })
                }
                _ => {
                    problems.add("SESSION_STORE", "must be 'memory' or a Redis URL such as redis://localhost:6379 or rediss://<name>.redis.cache.windows.net:6380.");
                    None
                }
            },
            None => None,
        };
        let session_idle = match self.session_idle_minutes.trim().parse::<u64>() {
            Ok(minutes) if minutes > 0 => Some(Duration::from_secs(minutes * 60)),
            _ => {
                problems.add(
                    "SESSION_IDLE_MINUTES",
                    format!("'{}' is not a positive number of minutes.", self.session_idle_minutes),
                );
                None
            }
        };
        let session_max_lifetime = match self.session_max_hours.trim().parse::<u64>() {
            Ok(hours) if (1..=24 * 90).contains(&hours) => Some(Duration::from_secs(hours * 3600)),
            _ => {
                problems.add(
                    "SESSION_MAX_HOURS",
                    format!("'{}' is not a number of hours from 1 to 2160 (90 days).", self.session_max_hours),
                );
                None
            }
        };
        let log_format = match self.log_format.trim().to_ascii_lowercase().as_str() {
            "text" => Some(LogFormat::Text),
            "json" => Some(LogFormat::Json),
            other => {
                problems.add("LOG_FORMAT", format!("'{other}' is not a log format; use text or json."));
                None
            }
        };

        let trust_forwarded_headers = match self.trust_forwarded_headers.trim().to_ascii_lowercase().as_str() {
            "true" | "1" | "yes" | "on" => true,
            "false" | "0" | "no" | "off" | "" => false,
            other => {
                problems.add("TRUST_FORWARDED_HEADERS", format!("'{other}' is not true or false."));
                false
            }
        };
        match (
            tenant,
            client_id,
            client_secret,
            redirect_uri,
            authority_host,
            graph_endpoint,
            port,
            bind_address,
            post_logout_redirect_uri,
            session_idle,
            log_format,
            session_store,
            session_max_lifetime,
        ) {
            (
                Some(tenant),
                Some(client_id),
                Some(client_secret),
                Some(redirect_uri),
                Some(authority_host),
                Some(graph_endpoint),
                Some(port),
                Some(bind_address),
                Some(post_logout_redirect_uri),
                Some(session_idle),
                Some(log_format),
                Some(session_store),
                Some(session_max_lifetime),
            ) if problems.0.is_empty() => Ok(AppConfig {
                authority: Authority::new(authority_host, tenant),
                client_id,
                client_secret: SecretString::from(client_secret),
                redirect_uri,
                graph_endpoint,
                scopes,
                bind_address,
                port,
                post_logout_redirect_uri,
                session_secrets,
                session_store,
                session_idle,
                session_max_lifetime,
                log_format,
                log_filter: self.rust_log.clone(),
                trust_forwarded_headers,
                pending_sign_in_lifetime: entra_auth::oidc::PENDING_SIGN_IN_LIFETIME,
                jwks_refetch_interval: entra_auth::oidc::MIN_REFETCH_INTERVAL,
                server_limits: ServerLimits::default(),
            }),
            _ => Err(ConfigErrors(problems.0)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn valid() -> Settings {
        Settings {
            tenant_id: Some("7e6b1c4a-2f0d-4a8e-9c3b-5d1e8f2a6b90".into()),
            client_id: Some("3f1c9a2e-8b4d-4c6f-a1e7-0d5b2c8e9f41".into()),
            client_secret: Some("s3cr3t".into()),
            redirect_uri: Some("https://app.example/callback".into()),
            authority_host: "https://login.microsoftonline.com".into(),
            graph_endpoint: "https://graph.microsoft.com".into(),
            scopes: "User.Read".into(),
            port: "5001".into(),
            bind_address: "0.0.0.0".into(),
            session_idle_minutes: "480".into(),
            session_max_hours: "24".into(),
            session_store: "memory".into(),
            max_sessions: "100000".into(),
            log_format: "text".into(),
            rust_log: "info".into(),
            ..Settings::default()
        }
    }

    fn variables(errors: ConfigErrors) -> Vec<&'static str> {
        errors.0.iter().map(|p| p.variable).collect()
    }

    #[test]
    fn valid_settings_parse_and_derive_the_post_logout_uri() {
        let config = valid().validate().unwrap();
        assert_eq!(config.post_logout_redirect_uri.as_str(), "https://app.example/");
        assert!(config.is_https());
    }

    #[test]
    fn every_problem_is_reported_at_once() {
        let settings = Settings {
            tenant_id: None,
            client_secret: Some(" ".into()),
            redirect_uri: Some("http://app.example/callback".into()),
            port: "eighty".into(),
            log_format: "xml".into(),
            ..valid()
        };
        let errors = variables(settings.validate().unwrap_err());
        assert_eq!(errors, vec!["TENANT_ID", "CLIENT_SECRET", "REDIRECT_URI", "PORT", "LOG_FORMAT"]);
    }

    #[test]
    fn relative_redirect_uri_and_bad_tenant_are_refused() {
        let settings =
            Settings { tenant_id: Some("not a tenant".into()), redirect_uri: Some("/callback".into()), ..valid() };
        let errors = settings.validate().unwrap_err();
        assert!(errors.to_string().contains("not an absolute URL"), "{errors}");
        assert_eq!(variables(errors), vec!["TENANT_ID", "REDIRECT_URI"]);
    }

    #[test]
    fn unresolved_key_vault_reference_is_named() {
        let settings = Settings {
            client_secret: Some("@Microsoft.KeyVault(SecretUri=https://kv.vault.azure.net/secrets/x)".into()),
            ..valid()
        };
        let errors = settings.validate().unwrap_err();
        assert!(errors.to_string().contains("CLIENT_SECRET: is still a literal @Microsoft.KeyVault"), "{errors}");
    }

    #[test]
    fn a_redis_store_requires_a_session_secret() {
        let settings = Settings { session_store: "redis://127.0.0.1:6379".into(), ..valid() };
        let errors = settings.validate().unwrap_err();
        assert!(errors.to_string().contains("SESSION_SECRET: is required with a Redis SESSION_STORE"), "{errors}");
        let settings = Settings {
            session_store: "rediss://cache.example:6380".into(),
            redis_password: Some("pw".into()),
            session_secret: Some("0123456789abcdef0123456789abcdef0123".into()),
            ..valid()
        };
        let config = settings.validate().unwrap();
        assert!(matches!(config.session_store, SessionStoreConfig::Redis { .. }));
        let settings = Settings { session_store: "postgres://x".into(), ..valid() };
        assert!(settings.validate().unwrap_err().to_string().contains("SESSION_STORE: must be"));
    }

    #[test]
    fn plain_redis_is_refused_for_a_remote_host() {
        let secret = Some("0123456789abcdef0123456789abcdef0123".to_owned());
        let settings =
            Settings { session_store: "redis://cache.example:6379".into(), session_secret: secret.clone(), ..valid() };
        let errors = settings.validate().unwrap_err();
        assert_eq!(variables(errors), vec!["SESSION_STORE"]);
        for local in ["redis://127.0.0.1:6379", "redis://localhost:6379", "redis://[::1]:6379"] {
            let settings = Settings { session_store: local.into(), session_secret: secret.clone(), ..valid() };
            assert!(settings.validate().is_ok(), "{local}");
        }
    }

    #[test]
    fn session_max_hours_defaults_to_a_day_and_must_be_sane() {
        assert_eq!(valid().validate().unwrap().session_max_lifetime, Duration::from_secs(24 * 3600));
        for bad in ["0", "-1", "lots", "100000"] {
            let settings = Settings { session_max_hours: bad.into(), ..valid() };
            assert_eq!(variables(settings.validate().unwrap_err()), vec!["SESSION_MAX_HOURS"], "{bad}");
        }
    }

    #[test]
    fn localhost_may_use_http() {
        let settings = Settings { redirect_uri: Some("http://localhost:5001/callback".into()), ..valid() };
        assert!(!settings.validate().unwrap().is_https());
    }
}
