//! Our own short-lived cookies (pending sign-ins, the page to land on after sign-out), all read
//! and written alike: `HttpOnly` (no script reads them), `SameSite=Lax` (Entra's redirects back
//! are top-level GETs), `Path=/`, and `Secure` over https (where their names take `__Host-`).

use std::borrow::Cow;
use std::time::Duration;

use axum::http::header::{COOKIE, SET_COOKIE};
use axum::http::{HeaderMap, HeaderValue};
use axum::response::Response;
use cookie::{Cookie, SameSite};

/// The cookie headers to send with a response.
pub(crate) type SetCookies = Vec<HeaderValue>;

/// The cookies `request` carries (unreadable ones skipped).
pub(crate) fn in_request(request: &HeaderMap) -> impl Iterator<Item = Cookie<'_>> {
    request
        .get_all(COOKIE)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(Cookie::split_parse)
        .filter_map(Result::ok)
}

/// `Set-Cookie` for one of ours living `lifetime`.
pub(crate) fn set(
    name: impl Into<Cow<'static, str>>,
    value: impl Into<Cow<'static, str>>,
    lifetime: Duration,
    secure: bool,
) -> HeaderValue {
    let max_age = cookie::time::Duration::seconds(i64::try_from(lifetime.as_secs()).unwrap_or(i64::MAX));
    header(Cookie::build((name, value)).max_age(max_age).build(), secure)
}

/// `Set-Cookie` that removes one of ours.
pub(crate) fn removal(name: impl Into<Cow<'static, str>>, secure: bool) -> HeaderValue {
    let mut cookie = Cookie::new(name, "");
    cookie.make_removal();
    header(cookie, secure)
}

fn header(mut cookie: Cookie<'_>, secure: bool) -> HeaderValue {
    cookie.set_http_only(true);
    cookie.set_same_site(SameSite::Lax);
    cookie.set_secure(secure);
    cookie.set_path("/");
    // Names are ASCII we chose; values are base64url: always a valid header value.
    HeaderValue::from_str(&cookie.to_string()).unwrap_or_else(|_| HeaderValue::from_static(""))
}

/// Adds `Set-Cookie` headers to a response.
pub(crate) fn with_cookies(mut response: Response, cookies: SetCookies) -> Response {
    for cookie in cookies {
        if !cookie.is_empty() {
            response.headers_mut().append(SET_COOKIE, cookie);
        }
    }
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn with_cookies_appends_each_cookie_and_skips_empty_ones() {
        let response = axum::response::IntoResponse::into_response("page");
        let response = with_cookies(
            response,
            vec![HeaderValue::from_static("a=1"), HeaderValue::from_static(""), HeaderValue::from_static("b=2")],
        );
        let set: Vec<&str> = response.headers().get_all(SET_COOKIE).iter().map(|v| v.to_str().unwrap()).collect();
        assert_eq!(set, ["a=1", "b=2"]);
    }

    #[test]
    fn ours_are_http_only_lax_site_wide_and_secure_over_https() {
        let set = set("name", "value", Duration::from_secs(600), true);
        let text = set.to_str().unwrap();
        for attribute in ["name=value", "HttpOnly", "SameSite=Lax", "Secure", "Path=/", "Max-Age=600"] {
            assert!(text.contains(attribute), "{attribute} in {text}");
        }
        assert!(!removal("name", false).to_str().unwrap().contains("Secure"));
        assert!(removal("name", false).to_str().unwrap().contains("Max-Age=0"));
        let mut request = HeaderMap::new();
        request.append(COOKIE, HeaderValue::from_static("a=1; b=2"));
        request.append(COOKIE, HeaderValue::from_static("c=3"));
        let names: Vec<String> = in_request(&request).map(|cookie| cookie.name().to_owned()).collect();
        assert_eq!(names, ["a", "b", "c"]);
    }
}
