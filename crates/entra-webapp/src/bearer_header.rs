//! `Authorization: Bearer <token>`, read the same way wherever a token may come: the proxy's API
//! callers and forward auth, and `/metrics`' scraper.

use axum::http::header::{self, HeaderMap};

/// The token of an `Authorization: Bearer` header (the scheme in any case, RFC 9110 §11.1).
pub(crate) fn bearer_token(headers: &HeaderMap) -> Option<&str> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.split_once(' ')?;
    scheme.eq_ignore_ascii_case("bearer").then(|| token.trim()).filter(|token| !token.is_empty())
}

#[cfg(test)]
mod tests {
    use axum::http::HeaderValue;

    use super::*;

    #[test]
    fn only_a_bearer_authorization_carries_a_token() {
        let with = |value: &str| {
            let mut headers = HeaderMap::new();
            headers.insert(header::AUTHORIZATION, HeaderValue::from_str(value).unwrap());
            bearer_token(&headers).map(str::to_owned)
        };
        assert_eq!(with("Bearer abc.def.ghi").as_deref(), Some("abc.def.ghi"));
        assert_eq!(with("bearer  abc ").as_deref(), Some("abc"));
        for other in ["Basic dXNlcjpwYXNz", "Bearer", "Bearer ", "Bearerabc", "abc"] {
            assert_eq!(with(other), None, "{other}");
        }
        assert_eq!(bearer_token(&HeaderMap::new()), None);
    }
}
