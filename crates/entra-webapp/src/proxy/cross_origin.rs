//! Cross-origin protection: a request that a page of another origin made in the user's browser
//! never reaches the app behind as the user when it can change something.
//!
//! The session cookie is `SameSite=Lax`, so pages of other *sites* cannot use it; pages of
//! another origin on the same site can (a sibling subdomain, another port of the host): the
//! browser sends the cookie with their form posts, `fetch` calls and WebSocket handshakes. A
//! WebSocket handshake is a `GET`, which CSRF defences that only look at unsafe methods let
//! through, and the socket it opens reads and writes as the user (cross-site WebSocket
//! hijacking). So unsafe methods and upgrades are checked the way Go's `CrossOriginProtection`
//! and ASP.NET Core's do: the browser's `Sec-Fetch-Site` decides; without it (browsers before
//! 2023) the `Origin` header must name the request's own host; without either, the request is
//! not a browser's and is let through. Origins listed in `PROXY_TRUSTED_ORIGINS` may always.
//! See <https://developer.mozilla.org/docs/Web/HTTP/Headers/Sec-Fetch-Site> and `docs/SECURITY.md`.

use axum::http::{HeaderMap, HeaderValue, Method, header};

/// Why a request counts as another origin's.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CrossOrigin {
    /// The browser said so (`Sec-Fetch-Site: same-site` or `cross-site`).
    FetchSite,
    /// Its `Origin` is not the request's host (no `Sec-Fetch-Site` to go by).
    Origin,
}

/// What a request is, as far as the check goes.
pub struct Request<'a> {
    /// The method the browser used (forward auth: the front end's `X-Forwarded-Method`).
    pub method: &'a Method,
    /// Its headers.
    pub headers: &'a HeaderMap,
    /// The host it was sent to (`Host`; forward auth: `X-Forwarded-Host` when the front end sets it).
    pub host: Option<&'a HeaderValue>,
}

/// Whether `request` may change something: an unsafe method, or a WebSocket handshake (a `GET`
/// that opens a read-write channel). `Sec-WebSocket-Key` and `Sec-Fetch-Mode: websocket` still say
/// so where a front end has dropped `Upgrade` (a hop-by-hop header) before asking forward auth.
fn can_change_something(request: &Request<'_>) -> bool {
    let headers = request.headers;
    !matches!(*request.method, Method::GET | Method::HEAD | Method::OPTIONS)
        || headers.contains_key(header::UPGRADE)
        || headers.contains_key(header::SEC_WEBSOCKET_KEY)
        || headers.get("sec-fetch-mode").is_some_and(|mode| mode == "websocket")
}

/// `Some` when `request` can change something and a page of another origin made it; `trusted`
/// are serialized origins (`https://app.example.com`) allowed all the same.
pub fn check(request: &Request<'_>, trusted: &[String]) -> Option<CrossOrigin> {
    if !can_change_something(request) {
        return None;
    }
    let origin = request.headers.get(header::ORIGIN);
    if origin.is_some_and(|origin| is_trusted(origin, trusted)) {
        return None;
    }
    if let Some(site) = request.headers.get("sec-fetch-site") {
        // `none`: the user's own action (a bookmark, the address bar), not a page's.
        return (site != "same-origin" && site != "none").then_some(CrossOrigin::FetchSite);
    }
    let origin = origin?;
    let origin_host = origin.to_str().ok().and_then(|origin| origin.split_once("://")).map(|(_, host)| host);
    let host = request.host.and_then(|host| host.to_str().ok());
    match (origin_host, host) {
        (Some(origin_host), Some(host)) if origin_host.eq_ignore_ascii_case(host) => None,
        _ => Some(CrossOrigin::Origin),
    }
}

fn is_trusted(origin: &HeaderValue, trusted: &[String]) -> bool {
    if trusted.is_empty() {
        return false;
    }
    // Compared as serialized origins, so `HTTPS://App.example.com:443` is `https://app.example.com`.
    let serialized = origin.to_str().ok().and_then(|origin| url::Url::parse(origin).ok()).map(|url| url.origin());
    serialized.is_some_and(|origin| origin.is_tuple() && trusted.contains(&origin.ascii_serialization()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn checked(method: &str, headers: &[(&str, &str)], host: &str, trusted: &[&str]) -> Option<CrossOrigin> {
        let mut map = HeaderMap::new();
        for (name, value) in headers {
            map.append(axum::http::HeaderName::from_bytes(name.as_bytes()).unwrap(), value.parse().unwrap());
        }
        let host = HeaderValue::from_str(host).unwrap();
        let method = Method::from_bytes(method.as_bytes()).unwrap();
        let trusted: Vec<String> = trusted.iter().map(|origin| (*origin).to_owned()).collect();
        check(&Request { method: &method, headers: &map, host: Some(&host) }, &trusted)
    }

    const HOST: &str = "app.example.com";

    #[test]
    fn safe_requests_are_never_checked() {
        for method in ["GET", "HEAD", "OPTIONS"] {
            let headers = [("sec-fetch-site", "cross-site"), ("origin", "https://evil.example")];
            assert_eq!(checked(method, &headers, HOST, &[]), None, "{method}");
        }
    }

    #[test]
    fn unsafe_requests_and_websocket_handshakes_from_another_origin_are_refused() {
        for site in ["same-site", "cross-site"] {
            for method in ["POST", "PUT", "PATCH", "DELETE", "PROPFIND"] {
                let headers = [("sec-fetch-site", site)];
                assert_eq!(checked(method, &headers, HOST, &[]), Some(CrossOrigin::FetchSite), "{method} {site}");
            }
            for handshake in [
                ("upgrade", "websocket"),
                ("sec-websocket-key", "x3JJHMbDL1EzLkh9GBhXDw=="),
                ("sec-fetch-mode", "websocket"),
            ] {
                let headers = [("sec-fetch-site", site), handshake];
                assert_eq!(checked("GET", &headers, HOST, &[]), Some(CrossOrigin::FetchSite), "{handshake:?}");
            }
        }
        // The browser's word decides, whatever Origin says.
        let headers = [("sec-fetch-site", "same-site"), ("origin", "https://app.example.com")];
        assert_eq!(checked("POST", &headers, HOST, &[]), Some(CrossOrigin::FetchSite));
    }

    #[test]
    fn the_apps_own_pages_and_the_users_own_actions_pass() {
        for site in ["same-origin", "none"] {
            assert_eq!(checked("POST", &[("sec-fetch-site", site)], HOST, &[]), None, "{site}");
            let handshake = [("sec-fetch-site", site), ("upgrade", "websocket")];
            assert_eq!(checked("GET", &handshake, HOST, &[]), None, "{site}");
        }
    }

    #[test]
    fn without_fetch_metadata_origin_must_name_the_host() {
        assert_eq!(checked("POST", &[("origin", "https://app.example.com")], HOST, &[]), None);
        assert_eq!(checked("POST", &[("origin", "https://APP.example.com")], HOST, &[]), None);
        assert_eq!(checked("POST", &[("origin", "http://localhost:5001")], "localhost:5001", &[]), None);
        for other in
            ["https://evil.example", "https://app.example.com:8443", "http://localhost:5002", "null", "app.example.com"]
        {
            assert_eq!(checked("POST", &[("origin", other)], HOST, &[]), Some(CrossOrigin::Origin), "{other}");
        }
        assert_eq!(
            checked("POST", &[("origin", "http://localhost:5002")], "localhost:5001", &[]),
            Some(CrossOrigin::Origin)
        );
        // Neither header: not a browser's request (curl, a server, a script of the app's own host).
        assert_eq!(checked("POST", &[], HOST, &[]), None);
        assert_eq!(checked("GET", &[("upgrade", "websocket")], HOST, &[]), None);
    }

    #[test]
    fn trusted_origins_pass_as_serialized_origins_only() {
        let trusted = ["https://admin.example.com"];
        for origin in ["https://admin.example.com", "HTTPS://Admin.Example.com:443"] {
            let headers = [("sec-fetch-site", "same-site"), ("origin", origin)];
            assert_eq!(checked("POST", &headers, HOST, &trusted), None, "{origin}");
        }
        for origin in ["https://admin.example.com:8443", "http://admin.example.com", "https://evil.example", "null"] {
            let headers = [("sec-fetch-site", "cross-site"), ("origin", origin)];
            assert_eq!(checked("POST", &headers, HOST, &trusted), Some(CrossOrigin::FetchSite), "{origin}");
        }
    }
}
