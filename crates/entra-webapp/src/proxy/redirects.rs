//! Redirects of the app behind that name its own address (`Location: http://127.0.0.1:8000/next`,
//! from an app that builds URLs from the address it listens on rather than the `Host` it is
//! given) would send the browser round the proxy: to an address it cannot reach or, where it can,
//! past sign-in. Such a `Location` is made relative, so the browser stays on the site it is on,
//! as nginx's `proxy_redirect default` does.

use axum::http::HeaderValue;
use axum::http::header::{self, HeaderMap};
use url::Url;

/// Rewrites a `Location` on `upstream`'s origin to its path, query and fragment.
pub(crate) fn keep_on_the_proxy(headers: &mut HeaderMap, upstream: &Url) {
    let Some(location) = headers.get(header::LOCATION).and_then(|value| value.to_str().ok()) else {
        return;
    };
    // Only an absolute URL can name another origin; `Url::parse` refuses relative ones.
    let Ok(target) = Url::parse(location) else {
        return;
    };
    if target.origin() != upstream.origin() {
        return;
    }
    let relative = &target[url::Position::BeforePath..];
    // `http://127.0.0.1:8000//evil.example/` has the path `//evil.example/`, which on its own
    // is another site's address: left as the app wrote it.
    if relative.starts_with("//") {
        return;
    }
    if let Ok(value) = HeaderValue::from_str(relative) {
        headers.insert(header::LOCATION, value);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rewritten(location: &str) -> String {
        let mut headers = HeaderMap::new();
        headers.insert(header::LOCATION, HeaderValue::from_str(location).unwrap());
        keep_on_the_proxy(&mut headers, &Url::parse("http://127.0.0.1:8000").unwrap());
        headers[header::LOCATION].to_str().unwrap().to_owned()
    }

    #[test]
    fn the_upstreams_own_address_becomes_a_path_on_the_site() {
        assert_eq!(rewritten("http://127.0.0.1:8000/next?x=1#top"), "/next?x=1#top");
        assert_eq!(rewritten("HTTP://127.0.0.1:8000"), "/");
        assert_eq!(rewritten("http://127.0.0.1:8000/a/../b"), "/b");
    }

    #[test]
    fn other_places_are_left_as_they_are() {
        for location in [
            "/next",
            "next?x=1",
            "//evil.example/x",
            "https://127.0.0.1:8000/x",
            "http://127.0.0.1:8001/x",
            "http://localhost:8000/x",
            "https://login.microsoftonline.com/common",
            // Made relative, these would lead to another site.
            "http://127.0.0.1:8000//evil.example/x",
            "http://127.0.0.1:8000/\\evil.example/x",
        ] {
            assert_eq!(rewritten(location), location);
        }
    }
}
