//! Answers the app behind gave a signed-in user are that user's alone: a shared cache in front of
//! the proxy (a CDN, Azure Front Door, an nginx `proxy_cache`) must not keep one and hand it to
//! the next person asking for the same URL, who may not even be signed in. Browsers' requests
//! carry a cookie, not `Authorization`, so nothing in HTTP stops such a cache from storing an
//! answer that allows it (`max-age`, `Expires`, or heuristically with `Last-Modified`; RFC 9111
//! §3.5 protects `Authorization` only), and the app behind, which may not know it sits behind
//! sign-in (a static file server), cannot be relied on to say `private`.

use std::cell::RefCell;

use axum::http::HeaderValue;
use axum::http::header::{self, HeaderMap};

thread_local! {
    /// The last single `Cache-Control` value this thread looked at, and what it becomes (`None`:
    /// unchanged). An app answers with few distinct values (`public, max-age=3600` for its static
    /// files...), so most answers are settled by one comparison; working a value out anew cost
    /// about 4,000 instructions per signed-in proxied request (docs/PERFORMANCE.md).
    static LAST: RefCell<Option<(HeaderValue, Option<HeaderValue>)>> = const { RefCell::new(None) };
}

/// Makes `headers` (of an answer to a request forwarded as a user) say `private`: kept by the
/// user's browser as the app allows, by no shared cache. `public` and `s-maxage`, which would let
/// shared caches keep it, and a `private` limited to some fields, are removed; `no-store` or a
/// plain `private` already say enough and are left as they are.
pub(crate) fn keep_out_of_shared_caches(headers: &mut HeaderMap) {
    let mut values = headers.get_all(header::CACHE_CONTROL).iter();
    let (Some(first), None) = (values.next(), values.next()) else {
        // None at all, or several values: worked out each time.
        if let Some(value) = made_private(headers) {
            headers.insert(header::CACHE_CONTROL, value);
        }
        return;
    };
    let remembered = LAST.with_borrow(|last| match last {
        Some((seen, becomes)) if seen == first => Some(becomes.clone()),
        _ => None,
    });
    let becomes = match remembered {
        Some(becomes) => becomes,
        None => {
            let seen = first.clone();
            let becomes = made_private(headers);
            LAST.set(Some((seen, becomes.clone())));
            becomes
        }
    };
    if let Some(value) = becomes {
        headers.insert(header::CACHE_CONTROL, value);
    }
}

/// The `Cache-Control` value that keeps `headers`' answer out of shared caches; `None` when it
/// says so already.
fn made_private(headers: &HeaderMap) -> Option<HeaderValue> {
    let values = headers.get_all(header::CACHE_CONTROL);
    let texts = || values.iter().filter_map(|value| value.to_str().ok());
    if texts().next().is_none() {
        return Some(HeaderValue::from_static("private"));
    }
    let (mut kept_out, mut shared) = (false, false);
    for directive in texts().flat_map(directives) {
        kept_out |= directive.eq_ignore_ascii_case("private") || is(directive, "no-store");
        shared |= is(directive, "public") || is(directive, "s-maxage");
    }
    if kept_out && !shared {
        return None;
    }
    let mut value = String::from("private");
    let doomed = |directive: &str| is(directive, "public") || is(directive, "s-maxage") || is(directive, "private");
    for directive in texts().flat_map(directives).filter(|directive| !doomed(directive)) {
        value.push_str(", ");
        value.push_str(directive);
    }
    Some(HeaderValue::try_from(value).unwrap_or_else(|_| HeaderValue::from_static("private")))
}

/// Whether `directive` (`name` or `name=argument`) is `name`, in any case.
fn is(directive: &str, name: &str) -> bool {
    directive.split_once('=').map_or(directive, |(directive, _)| directive).trim_end().eq_ignore_ascii_case(name)
}

/// The comma-separated directives of one `Cache-Control` value, trimmed; a comma inside a quoted
/// argument (`private="set-cookie, x-user"`) separates nothing.
fn directives(value: &str) -> impl Iterator<Item = &str> {
    let mut quoted = false;
    value
        .split(move |c: char| {
            if c == '"' {
                quoted = !quoted;
            }
            c == ',' && !quoted
        })
        .map(str::trim)
        .filter(|directive| !directive.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kept_out(values: &[&str]) -> Vec<String> {
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
            assert_eq!(kept_out(sent), [kept], "{sent:?}");
        }
    }

    #[test]
    fn answers_no_shared_cache_may_keep_are_left_alone() {
        for sent in [&["no-store"][..], &["private, max-age=60"], &["no-cache", "private"], &["NO-STORE"]] {
            assert_eq!(kept_out(sent), sent, "{sent:?}");
        }
    }

    #[test]
    fn a_value_seen_before_comes_out_the_same() {
        for _ in 0..3 {
            assert_eq!(kept_out(&["public, max-age=60"]), ["private, max-age=60"]);
            assert_eq!(kept_out(&["no-store"]), ["no-store"]);
            assert_eq!(kept_out(&[]), ["private"]);
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
