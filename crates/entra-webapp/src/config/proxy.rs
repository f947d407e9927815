//! Proxy mode: `UPSTREAM_URL` and how requests reach it (TLS in `upstream_tls.rs`, `UPSTREAM_HTTP_VERSION`, `PROXY_PASS_HOST_HEADER`, `PROXY_OWN_ROUTES`, `PROXY_PATH_ROLES`/`_GROUPS` in `path_rules.rs`,
//! `PROXY_ANONYMOUS_PATHS`, `PROXY_UNAUTHENTICATED_ACTION`, `PROXY_PASS_TOKENS`, `PROXY_ACCESS_TOKEN_SCOPES`, `PROXY_TRUSTED_ORIGINS`,
//! `PROXY_WEBSOCKET_CHECK_SECONDS`, `PROXY_PRINCIPAL_GROUPS`, `PROXY_PRINCIPAL_MAX_BYTES`,
//! `PROXY_BEARER_CLIENTS`, `PROXY_BEARER_AUDIENCES`, `UPSTREAM_TIMEOUT_SECONDS`).

use std::net::IpAddr;
use std::time::Duration;

use entra_auth::{BearerPolicy, ResourceScopes};
use url::Url;
use uuid::Uuid;

use crate::config::listener::ListenerConfig;
use crate::config::own_routes::{self, OwnRoutes};
use crate::config::path_rules::{self, PathRule};
use crate::config::problems::Problems;
use crate::config::settings::{Settings, set};
use crate::config::upstream_tls::{self, UpstreamClientCertificate, UpstreamRoots};

/// What to do with a request that has no session.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum UnauthenticatedAction {
    /// Browser navigations go to sign-in and come back; other requests get 401.
    Redirect,
    /// Forwarded without identity headers (App Service's "Allow unauthenticated requests").
    Allow,
    /// 401, whatever asked.
    Return401,
}

/// A path anyone may reach: exact, or every path under a prefix (`/static/*`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PathPattern {
    /// This path only.
    Exact(String),
    /// Paths starting with this (the pattern without its `*`).
    Prefix(String),
}

impl std::fmt::Display for PathPattern {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            PathPattern::Exact(path) => f.write_str(path),
            PathPattern::Prefix(prefix) => write!(f, "{prefix}*"),
        }
    }
}

impl PathPattern {
    /// Whether `path` (a request path, already without query) matches.
    pub fn matches(&self, path: &str) -> bool {
        match self {
            PathPattern::Exact(exact) => path == exact,
            PathPattern::Prefix(prefix) => path.starts_with(prefix.as_str()),
        }
    }
}

/// The proxy's configuration.
#[derive(Clone, Debug)]
pub struct ProxyConfig {
    /// `http://host:port` (or `https://`) of the app behind.
    pub upstream: Url,
    /// The only CAs trusted to sign an `https://` upstream's certificate (`UPSTREAM_CA_FILE`);
    /// `None`: the system's (or `SSL_CERT_FILE`'s) and Mozilla's.
    pub upstream_roots: Option<UpstreamRoots>,
    /// What the proxy presents to an `https://` upstream that asks for a client certificate
    /// (`UPSTREAM_CLIENT_CERTIFICATE_PATH`); `None`: nothing.
    pub upstream_client_certificate: Option<UpstreamClientCertificate>,
    /// Send the client's `Host` to the app behind (else the upstream's own).
    pub pass_host_header: bool,
    /// Speak HTTP/2 to the app behind (`UPSTREAM_HTTP_VERSION=2`), else HTTP/1.1.
    pub upstream_http2: bool,
    /// Where our own routes are (`PROXY_OWN_ROUTES`); every other path is the app behind's.
    pub own_routes: OwnRoutes,
    /// Roles and groups some paths need besides the access policy (`PROXY_PATH_ROLES`,
    /// `PROXY_PATH_GROUPS`).
    pub path_rules: Vec<PathRule>,
    /// Reachable without a session.
    pub anonymous_paths: Vec<PathPattern>,
    /// Requests without a session elsewhere.
    pub unauthenticated: UnauthenticatedAction,
    /// Also send the access and ID tokens upstream.
    pub pass_tokens: bool,
    /// What the access token sent upstream is for; `None`: the sign-in's.
    pub access_token_scopes: Option<ResourceScopes>,
    /// How long to wait for the upstream's response headers.
    pub response_timeout: Duration,
    /// Serialized origins (`https://admin.example.com`) whose pages may act as the user, besides
    /// the app's own (see `proxy/cross_origin.rs`).
    pub trusted_origins: Vec<String>,
    /// How often an upgraded connection (WebSocket) checks that its session still exists.
    pub session_check: Duration,
    /// The groups the app behind is told about (of those the user is in); `None`: all.
    pub principal_groups: Option<Vec<Uuid>>,
    /// The most bytes `X-MS-CLIENT-PRINCIPAL` may take before its groups give way to the overage
    /// claim.
    pub principal_max_bytes: usize,
    /// Which access tokens (`Authorization: Bearer`) stand in for a session; `None`: none do.
    pub bearer: Option<BearerPolicy>,
}

impl ProxyConfig {
    /// Whether `path` is reachable without a session: it matches an anonymous pattern and is
    /// plain (see [`is_plain`]).
    pub fn is_anonymous(&self, path: &str) -> bool {
        self.anonymous_paths.iter().any(|pattern| pattern.matches(path)) && is_plain(path)
    }
}

/// Whether `path` means the same to every server. The upstream gets the path as the client sent
/// it, and servers disagree about some: many resolve `/static/../admin` to `/admin` (and
/// `%2e%2e` to `..`), Tomcat reads `..;` as `..`, IIS a backslash as a slash, and an app that
/// decodes twice reads `%252e` as `.`. Matched against an anonymous prefix, any of these would
/// be a way round sign-in, so a path with a dot segment, a `;`, a backslash, or a
/// percent-encoded `.`, `/`, `\` or `%` is never anonymous: it needs a session like any other.
fn is_plain(path: &str) -> bool {
    const ENCODED: [&[u8; 3]; 4] = [b"%2e", b"%2f", b"%5c", b"%25"];
    let encoded = path.as_bytes().windows(3).any(|three| ENCODED.iter().any(|e| three.eq_ignore_ascii_case(*e)));
    !encoded && !path.contains(['\\', ';']) && !path.split('/').any(|segment| matches!(segment, "." | ".."))
}

/// Refuses an `upstream` that is this proxy's own listening socket (`BIND_ADDRESS:PORT`, where an
/// unspecified bind address listens on every local address): every request would come back to
/// the proxy, each one holding a connection, until none is left. (Other ways round, through a
/// name or a front end, are caught per request: see `forward.rs`'s `Via`.)
pub(crate) fn refuse_own_address(upstream: &Url, listener: &ListenerConfig, problems: &mut Problems) {
    let (bind, port) = (listener.bind_address, listener.port);
    let local = |ip: IpAddr| ip.is_loopback() || ip.is_unspecified();
    let same_host = match upstream.host() {
        Some(url::Host::Domain(name)) => name.eq_ignore_ascii_case("localhost") && local(bind),
        Some(url::Host::Ipv4(ip)) => IpAddr::V4(ip) == bind || (bind.is_unspecified() && local(IpAddr::V4(ip))),
        Some(url::Host::Ipv6(ip)) => IpAddr::V6(ip) == bind || (bind.is_unspecified() && local(IpAddr::V6(ip))),
        None => false,
    };
    if same_host && upstream.port_or_known_default() == Some(port) {
        problems.add(
            "UPSTREAM_URL",
            format!(
                "{upstream} is this proxy's own address (PORT is {port}): every request would come back to it. Set it to the app behind's address, and PORT to another port (e.g. the app on 8000, PORT=8080).",
            ),
        );
    }
}

/// A path rule whose paths are all anonymous would never apply (anonymous paths come first), and
/// whoever wrote it meant them guarded: a start-up error, not an open door.
fn refuse_rules_within_anonymous_paths(rules: &[PathRule], anonymous: &[PathPattern], problems: &mut Problems) {
    for rule in rules {
        for pattern in anonymous {
            let within = match pattern {
                PathPattern::Exact(path) => rule.lies_within(path, false),
                PathPattern::Prefix(prefix) => rule.lies_within(prefix, true),
            };
            if within {
                problems.add(
                    rule.variable(),
                    format!(
                        "'{rule}' lies within PROXY_ANONYMOUS_PATHS' '{pattern}', which anyone may reach without signing in, so the rule would never apply. Take its paths out of PROXY_ANONYMOUS_PATHS (list the open paths beside them instead, e.g. /api/public/* rather than /api/*)."
                    ),
                );
            }
        }
    }
}

pub(crate) fn validate(settings: &Settings, problems: &mut Problems) -> Option<Option<ProxyConfig>> {
    let Some(upstream) = set(&settings.upstream_url) else {
        return Some(None);
    };
    let upstream = problems.url("UPSTREAM_URL", upstream, "http://127.0.0.1:8080").filter(|url| {
        let plain_origin = matches!(url.scheme(), "http" | "https")
            && url.host().is_some()
            && url.path() == "/"
            && url.query().is_none()
            && url.username().is_empty();
        if !plain_origin {
            problems.add(
                "UPSTREAM_URL",
                "must be http://host:port or https://host:port, with no path, query or credentials (the app behind).",
            );
        }
        plain_origin
    });
    let mut anonymous_paths = Vec::new();
    for item in settings.proxy_anonymous_paths.as_deref().unwrap_or_default().split(',').map(str::trim) {
        if item.is_empty() {
            continue;
        }
        let pattern = match item.strip_suffix('*') {
            Some(prefix) => PathPattern::Prefix(prefix.to_owned()),
            None => PathPattern::Exact(item.to_owned()),
        };
        let text = match &pattern {
            PathPattern::Exact(path) | PathPattern::Prefix(path) => path,
        };
        if !text.starts_with('/') || text.contains('*') || text.contains('?') {
            problems.add(
                "PROXY_ANONYMOUS_PATHS",
                format!("'{item}' is not a path such as /health or /static/* (a * only at the end)."),
            );
            continue;
        }
        anonymous_paths.push(pattern);
    }
    let unauthenticated = match settings.proxy_unauthenticated_action.trim().to_ascii_lowercase().as_str() {
        "redirect" | "redirecttologinpage" => UnauthenticatedAction::Redirect,
        "allow" | "allowanonymous" => UnauthenticatedAction::Allow,
        "401" | "return401" => UnauthenticatedAction::Return401,
        other => {
            problems.add("PROXY_UNAUTHENTICATED_ACTION", format!("'{other}' is not redirect, allow or 401."));
            UnauthenticatedAction::Redirect
        }
    };
    let pass_tokens = problems.boolean("PROXY_PASS_TOKENS", &settings.proxy_pass_tokens);
    let pass_host_header = problems.boolean("PROXY_PASS_HOST_HEADER", &settings.proxy_pass_host_header);
    let upstream_http2 = match settings.upstream_http_version.trim() {
        "1.1" | "1" | "http/1.1" | "HTTP/1.1" => false,
        "2" | "2.0" | "h2" | "HTTP/2" => true,
        other => {
            problems.add("UPSTREAM_HTTP_VERSION", format!("'{other}' is not 1.1 or 2."));
            false
        }
    };
    let own_routes = own_routes::own_routes(&settings.proxy_own_routes, problems);
    let path_rules = path_rules::validate(settings, problems);
    refuse_rules_within_anonymous_paths(&path_rules, &anonymous_paths, problems);
    let upstream_roots = upstream_tls::upstream_roots(settings, upstream.as_ref(), problems);
    let upstream_client_certificate = upstream_tls::upstream_client_certificate(settings, upstream.as_ref(), problems);
    let access_token_scopes = access_token_scopes(settings, pass_tokens, problems);
    let response_timeout = seconds("UPSTREAM_TIMEOUT_SECONDS", &settings.upstream_timeout_seconds, problems);
    let session_check = seconds("PROXY_WEBSOCKET_CHECK_SECONDS", &settings.proxy_websocket_check_seconds, problems);
    let trusted_origins = trusted_origins(settings.proxy_trusted_origins.as_deref().unwrap_or_default(), problems);
    let principal_groups = settings
        .proxy_principal_groups
        .as_deref()
        .filter(|value| !value.trim().is_empty())
        .map(|value| crate::config::access::guids("PROXY_PRINCIPAL_GROUPS", Some(value), "group", problems));
    let principal_max_bytes = principal_max_bytes(&settings.proxy_principal_max_bytes, problems);
    let bearer = bearer_policy(settings, problems);
    Some(Some(ProxyConfig {
        upstream: upstream?,
        upstream_roots,
        upstream_client_certificate,
        pass_host_header,
        upstream_http2,
        own_routes,
        path_rules,
        anonymous_paths,
        unauthenticated,
        pass_tokens,
        access_token_scopes,
        response_timeout: response_timeout?,
        trusted_origins,
        session_check: session_check?,
        principal_groups,
        principal_max_bytes: principal_max_bytes?,
        bearer,
    }))
}

/// `PROXY_ACCESS_TOKEN_SCOPES`: one resource's scopes, only with `PROXY_PASS_TOKENS=true` (it
/// says what the passed token is for; without passing it would be a setting that does nothing).
fn access_token_scopes(settings: &Settings, pass_tokens: bool, problems: &mut Problems) -> Option<ResourceScopes> {
    let value = set(&settings.proxy_access_token_scopes)?;
    if !pass_tokens {
        problems.add(
            "PROXY_ACCESS_TOKEN_SCOPES",
            "needs PROXY_PASS_TOKENS=true: it names what the access token passed to the app behind is for.",
        );
        return None;
    }
    // Easy Auth's `scope=` lists the sign-in's own scopes too; they are always asked here.
    let oidc = ["openid", "profile", "email", "offline_access"];
    let scopes: Vec<&str> = value.split_whitespace().filter(|scope| !oidc.contains(scope)).collect();
    match scopes.join(" ").parse::<ResourceScopes>() {
        Ok(scopes) => Some(scopes),
        Err(error) => {
            problems.add("PROXY_ACCESS_TOKEN_SCOPES", format!("{error}."));
            None
        }
    }
}

/// `PROXY_BEARER_CLIENTS` (client ids or `*`) and `PROXY_BEARER_AUDIENCES`; no policy without
/// clients.
fn bearer_policy(settings: &Settings, problems: &mut Problems) -> Option<BearerPolicy> {
    let list = |value: &Option<String>| -> Vec<String> {
        let items = value.as_deref().unwrap_or_default().split(',').map(str::trim);
        items.filter(|item| !item.is_empty()).map(str::to_owned).collect()
    };
    let (clients, audiences) = (list(&settings.proxy_bearer_clients), list(&settings.proxy_bearer_audiences));
    let any = clients.iter().any(|client| client == "*");
    if any && clients.len() > 1 {
        problems.add("PROXY_BEARER_CLIENTS", "is either * (any application) or a list of client ids, not both.");
    }
    for client in clients.iter().filter(|client| *client != "*" && Uuid::parse_str(client).is_err()) {
        problems.add("PROXY_BEARER_CLIENTS", format!("'{client}' is not an application (client) id, a GUID."));
    }
    for audience in
        audiences.iter().filter(|audience| Url::parse(audience).is_err() && Uuid::parse_str(audience).is_err())
    {
        problems.add(
            "PROXY_BEARER_AUDIENCES",
            format!("'{audience}' is not an Application ID URI (api://..., https://...) or a client id."),
        );
    }
    if clients.is_empty() {
        if !audiences.is_empty() {
            problems
                .add("PROXY_BEARER_AUDIENCES", "needs PROXY_BEARER_CLIENTS: no access token is accepted without it.");
        }
        return None;
    }
    let client_id = settings.client_id.as_deref().unwrap_or_default().trim();
    Some(BearerPolicy::new(client_id, audiences, (!any).then_some(clients)))
}

/// `PROXY_PRINCIPAL_MAX_BYTES`: at least what a user without groups needs, at most 1 MiB.
fn principal_max_bytes(value: &str, problems: &mut Problems) -> Option<usize> {
    match value.trim().parse::<usize>() {
        Ok(bytes) if (2048..=1 << 20).contains(&bytes) => Some(bytes),
        _ => {
            problems.add(
                "PROXY_PRINCIPAL_MAX_BYTES",
                "must be a whole number of bytes from 2048 to 1048576 (the default, 8000, fits the 8 KB per request header that nginx, Apache and gunicorn allow).",
            );
            None
        }
    }
}

/// A whole number of seconds from 1 to 3600.
fn seconds(variable: &'static str, value: &str, problems: &mut Problems) -> Option<Duration> {
    match value.trim().parse::<u64>() {
        Ok(seconds) if (1..=3600).contains(&seconds) => Some(Duration::from_secs(seconds)),
        _ => {
            problems.add(variable, "must be a whole number of seconds from 1 to 3600.");
            None
        }
    }
}

/// `PROXY_TRUSTED_ORIGINS`: each an origin as browsers send it in `Origin` (scheme, host, port
/// if not the scheme's own), kept serialized the way the check compares them.
fn trusted_origins(value: &str, problems: &mut Problems) -> Vec<String> {
    let mut origins = Vec::new();
    for item in value.split(',').map(str::trim).filter(|item| !item.is_empty()) {
        let origin = Url::parse(item).ok().filter(|url| {
            matches!(url.scheme(), "http" | "https")
                && url.host().is_some()
                && url.username().is_empty()
                && url.password().is_none()
                && url.path() == "/"
                && url.query().is_none()
                && url.fragment().is_none()
        });
        match origin {
            Some(url) => origins.push(url.origin().ascii_serialization()),
            None => problems.add(
                "PROXY_TRUSTED_ORIGINS",
                format!("'{item}' is not an origin such as https://admin.example.com (scheme, host and port only)."),
            ),
        }
    }
    origins
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn patterns_match_exactly_or_by_prefix() {
        assert!(PathPattern::Exact("/health".into()).matches("/health"));
        assert!(!PathPattern::Exact("/health".into()).matches("/health/x"));
        assert!(PathPattern::Prefix("/static/".into()).matches("/static/app.js"));
        assert!(!PathPattern::Prefix("/static/".into()).matches("/staticx"));
    }

    #[test]
    fn only_plain_paths_are_anonymous() {
        let config = ProxyConfig {
            upstream: Url::parse("http://127.0.0.1:8000").unwrap(),
            upstream_roots: None,
            upstream_client_certificate: None,
            upstream_http2: false,
            own_routes: OwnRoutes::Root,
            path_rules: Vec::new(),
            pass_host_header: true,
            anonymous_paths: vec![PathPattern::Prefix("/static/".into()), PathPattern::Exact("/health".into())],
            unauthenticated: UnauthenticatedAction::Redirect,
            pass_tokens: false,
            access_token_scopes: None,
            response_timeout: Duration::from_secs(1),
            trusted_origins: Vec::new(),
            session_check: Duration::from_secs(1),
            principal_groups: None,
            principal_max_bytes: 8000,
            bearer: None,
        };
        for plain in ["/static/app.js", "/static/a..b/c.css", "/static/.well-known", "/static/x%20y.png", "/health"] {
            assert!(config.is_anonymous(plain), "{plain}");
        }
        for disguised in [
            "/static/../admin",
            "/static/.",
            "/static/./x",
            "/static/..",
            "/static/%2e%2e/admin",
            "/static/%2E./admin",
            "/static/..%2Fadmin",
            "/static/..%5cadmin",
            "/static/..\\admin",
            "/static/..;/admin",
            "/static/%252e%252e/admin",
            "/admin",
        ] {
            assert!(!config.is_anonymous(disguised), "{disguised}");
        }
    }
}
