//! The site's own absolute URL as a request reached it. Behind App Service's front end requests
//! arrive as plain http: with `TRUST_FORWARDED_HEADERS` the original scheme and host come from
//! `X-Forwarded-Proto` / `X-Forwarded-Host`; without it those headers change nothing (anyone can
//! send them). The configured `REDIRECT_URI` is never derived from a request.

use axum::http::HeaderMap;

/// `scheme://host[:port]` of this request.
pub fn origin(headers: &HeaderMap, trust_forwarded_headers: bool) -> String {
    let header = |name: &str| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            // A proxy chain appends: the first value is what the client used.
            .and_then(|v| v.split(',').next())
            .map(str::trim)
            .filter(|v| !v.is_empty())
    };
    let forwarded = |name: &str| if trust_forwarded_headers { header(name) } else { None };
    let scheme = match forwarded("x-forwarded-proto") {
        Some(proto) if proto.eq_ignore_ascii_case("https") => "https",
        _ => "http",
    };
    let host = forwarded("x-forwarded-host").or_else(|| header("host")).unwrap_or("localhost");
    let host: String =
        host.chars().filter(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | ':' | '[' | ']')).collect();
    format!("{scheme}://{host}")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (name, value) in pairs {
            map.insert(*name, value.parse().unwrap());
        }
        map
    }

    #[test]
    fn forwarded_headers_count_only_when_trusted() {
        let h =
            headers(&[("host", "10.0.0.4:8080"), ("x-forwarded-proto", "https"), ("x-forwarded-host", "app.example")]);
        assert_eq!(origin(&h, true), "https://app.example");
        assert_eq!(origin(&h, false), "http://10.0.0.4:8080");
    }

    #[test]
    fn hostile_host_values_cannot_inject() {
        let h = headers(&[("host", "evil.example/<script>")]);
        assert_eq!(origin(&h, false), "http://evil.examplescript");
    }
}
