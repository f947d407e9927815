//! Answers the app behind gave a signed-in user are that user's alone: a shared cache in front of
//! the proxy (a CDN, Azure Front Door, an nginx `proxy_cache`) must not keep one and hand it to
//! the next person asking for the same URL, who may not even be signed in. Browsers' requests
//! carry a cookie, not `Authorization`, so nothing in HTTP stops such a cache from storing an
//! answer that allows it (`max-age`, `Expires`, or heuristically with `Last-Modified`; RFC 9111
//! §3.5 protects `Authorization` only), and the app behind, which may not know it sits behind
//! sign-in (a static file server), cannot be relied on to say `private`.

use axum::http::HeaderValue;
use axum::http::header::{self, HeaderMap};

/// Makes `headers` (of an answer to a request forwarded as a user) say `private`: kept by the
/// user's browser as the app allows, by no shared cache. `public` and `s-maxage`, which would let
/// shared caches keep it, and a `private` limited to some fields, are removed; `no-store` or a
/// plain `private` already say enough and are left as they are.
pub(crate) fn keep_out_of_shared_caches(headers: &mut HeaderMap) {
    if !headers.contains_key(header::CACHE_CONTROL) {
        headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("private"));
        return;
    }
    let values: Vec<&str> = headers.get_all(header::CACHE_CONTROL).iter().filter_map(|v| v.to_str().ok()).collect();
    let directives: Vec<&str> = values.iter().flat_map(|value| directives(value)).collect();
    let name = |directive: &str| directive.split('=').next().unwrap_or_default().trim().to_ascii_lowercase();
    let shares = |directive: &&str| matches!(name(directive).as_str(), "public" | "s-maxage");
    let private = |directive: &&str| directive.eq_ignore_ascii_case("private") || name(directive) == "no-store";
    if directives.iter().any(private) && !directives.iter().any(shares) {
        return;
    }
    let kept = directives.iter().filter(|directive| !shares(directive) && name(directive) != "private");
    let value = std::iter::once("private").chain(kept.copied()).collect::<Vec<_>>().join(", ");
    let value = HeaderValue::from_str(&value).unwrap_or_else(|_| HeaderValue::from_static("private"));
    headers.insert(header::CACHE_CONTROL, value);
}

/// The comma-separated directives of one `Cache-Control` value, trimmed; a comma inside a quoted
/// argument (`private="set-cookie, x-user"`) separates nothing.
fn directives(value: &str) -> Vec<&str> {
    let mut directives = Vec::new();
    let (mut start, mut quoted) = (0, false);
    for (at, byte) in value.bytes().enumerate() {
        match byte {
            b'"' => quoted = !quoted,
            b',' if !quoted => {
                directives.push(&value[start..at]);
                start = at + 1;
            }
            _ => {}
        }
    }
    directives.push(&value[start..]);
    directives.into_iter().map(str::trim).filter(|directive| !directive.is_empty()).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn made_private(values: &[&str]) -> Vec<String> {
        let mut headers = HeaderMap::new();
        for value in values {
            headers.append(header::CACHE_CONTROL, HeaderValue::from_str(value).unwrap());
        }
        keep_out_of_shared_caches(&mut headers);
        headers.get_all(header::CACHE_CONTROL).iter().map(|v| v.to_str().unwrap().to_owned()).collect()
    }

    #[test]
    fn what_shared_caches_could_keep_becomes_private_and_the_rest_stays() {
        for (sent, kept) in [
            (&[][..], "private"),
            (&["max-age=3600"], "private, max-age=3600"),
            (&["public, max-age=60, s-maxage=600"], "private, max-age=60"),
            (&["Public", "S-MAXAGE=5", "must-revalidate"], "private, must-revalidate"),
            (&[r#"private="set-cookie, x-user", max-age=60"#], "private, max-age=60"),
            (&["no-cache"], "private, no-cache"),
            (&["immutable, max-age=31536000"], "private, immutable, max-age=31536000"),
            (&["private, public"], "private"),
            (&[",,"], "private"),
        ] {
            assert_eq!(made_private(sent), [kept], "{sent:?}");
        }
    }

    #[test]
    fn answers_no_shared_cache_may_keep_are_left_alone() {
        for sent in [&["no-store"][..], &["private, max-age=60"], &["no-cache", "private"], &["NO-STORE"]] {
            assert_eq!(made_private(sent), sent, "{sent:?}");
        }
    }

    #[test]
    fn a_value_that_is_not_text_gives_way_to_private() {
        let mut headers = HeaderMap::new();
        headers.insert(header::CACHE_CONTROL, HeaderValue::from_bytes(b"public, max-age=\xff").unwrap());
        keep_out_of_shared_caches(&mut headers);
        assert_eq!(headers[header::CACHE_CONTROL], "private");
    }
}
