//! Where a browser may be sent inside the site: a same-origin absolute path, or nothing.
//!
//! Every local redirect the crate issues (after sign-in, to sign-in, back to a page) is a
//! [`LocalPath`], and the only way to make one is [`LocalPath::parse`], whose guarantee is
//! checked on its *output*: the value that ends up in `Location` is a single-slash absolute path
//! that, joined to any origin, stays on that origin. Checking only the input is not enough: a URL
//! parser resolving `/.//evil.example` produces `//evil.example` (RFC 3986 §5.2.4 removes the
//! dot segment and leaves the empty one), which a browser reads as another host.

use std::fmt;

use percent_encoding::percent_decode_str;
use url::Url;

/// Longer return paths are refused (they travel in a cookie; see `pending`).
pub const MAX_LENGTH: usize = 1024;
/// A base no real request can have, to let the URL parser resolve the candidate for us.
const PROBE_BASE: &str = "http://return-to.invalid/";

/// A same-origin absolute path (with query), safe to put in `Location`.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct LocalPath(String);

impl LocalPath {
    /// The site's root, `/`.
    pub fn root() -> Self {
        Self("/".to_owned())
    }

    /// Resolves `raw` (dot segments removed, query kept, fragment dropped) and returns it if the
    /// *result* is a same-origin path; `None` otherwise.
    pub fn parse(raw: &str) -> Option<Self> {
        if raw.len() > MAX_LENGTH || !is_same_origin_path(raw) {
            return None;
        }
        let base = Url::parse(PROBE_BASE).ok()?;
        let resolved = base.join(raw).ok()?;
        let mut path = resolved.path().to_owned();
        if let Some(query) = resolved.query() {
            path.push('?');
            path.push_str(query);
        }
        // The guarantee, on what will actually be used.
        (resolved.origin() == base.origin() && is_same_origin_path(&path) && resolves_to_itself(&path))
            .then_some(Self(path))
    }

    /// The same for a return URL that may also be absolute on the site itself
    /// (`https://app.example/orders`, as App Service authentication accepts in
    /// `post_login_redirect_uri`): one with `site`'s origin (scheme, host, port) becomes its path and
    /// query, then is checked as any other; one on any other origin is refused.
    pub fn parse_on_site(raw: &str, site: &Url) -> Option<Self> {
        match Url::parse(raw) {
            Ok(url) if url.origin() == site.origin() && url.username().is_empty() && url.password().is_none() => {
                let mut local = url.path().to_owned();
                if let Some(query) = url.query() {
                    local.push('?');
                    local.push_str(query);
                }
                Self::parse(&local)
            }
            Ok(_) => None,
            Err(_) => Self::parse(raw),
        }
    }

    /// The path, for `Location`.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for LocalPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl From<LocalPath> for String {
    fn from(path: LocalPath) -> Self {
        path.0
    }
}

impl TryFrom<String> for LocalPath {
    type Error = &'static str;

    fn try_from(raw: String) -> Result<Self, Self::Error> {
        Self::parse(&raw).ok_or("not a same-origin path")
    }
}

/// What a browser, and anything decoding it further along, reads as a path on this origin: one
/// leading `/` not followed by `/` or `\`; printable ASCII only (browsers strip tabs and newlines
/// and map `\` to `/`, and full-width `／` normalises to `/`); and the same after up to three
/// rounds of percent-decoding (encoded slashes, backslashes, dots and control characters).
fn is_same_origin_path(candidate: &str) -> bool {
    let mut text = std::borrow::Cow::Borrowed(candidate);
    for round in 0..=3 {
        let bytes = text.as_bytes();
        let printable =
            if round == 0 { bytes.iter().all(|b| b.is_ascii_graphic()) } else { !text.chars().any(|c| c.is_control()) };
        if !printable
            || bytes.first() != Some(&b'/')
            || matches!(bytes.get(1), Some(b'/' | b'\\'))
            || text.contains('\\')
        {
            return false;
        }
        let Ok(decoded) = percent_decode_str(&text).decode_utf8() else {
            return false;
        };
        if decoded == text {
            return true;
        }
        text = std::borrow::Cow::Owned(decoded.into_owned());
    }
    // Still changing after three rounds of decoding: nobody legitimate nests encodings that deep.
    false
}

/// Joining the path to a base gives back the path itself: no dot segment (plain or encoded) is
/// left for anyone to resolve later into something else.
fn resolves_to_itself(path: &str) -> bool {
    let Ok(base) = Url::parse(PROBE_BASE) else { return false };
    let Ok(joined) = base.join(path) else { return false };
    let again = match joined.query() {
        Some(query) => format!("{}?{query}", joined.path()),
        None => joined.path().to_owned(),
    };
    let decoded_once = percent_decode_str(path).decode_utf8_lossy();
    again == path && !decoded_once.split(['/', '?']).any(|segment| segment == "." || segment == "..")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sanitize(raw: &str) -> Option<String> {
        LocalPath::parse(raw).map(String::from)
    }

    #[test]
    fn absolute_urls_on_the_site_become_its_paths_and_others_are_refused() {
        let site = Url::parse("https://app.example/callback").unwrap();
        let on_site = |raw: &str| LocalPath::parse_on_site(raw, &site).map(String::from);
        assert_eq!(on_site("https://app.example/orders?id=7#top").as_deref(), Some("/orders?id=7"));
        assert_eq!(on_site("HTTPS://APP.EXAMPLE:443/a/../b").as_deref(), Some("/b"));
        assert_eq!(on_site("/orders").as_deref(), Some("/orders"), "a path as before");
        for elsewhere in [
            "https://evil.example/orders",
            "http://app.example/orders",
            "https://app.example:8443/orders",
            "https://app.example.evil.example/",
            "https://user@app.example/orders",
            "javascript:alert(1)",
            "//evil.example/",
            // On the site, but a path the browser would read as another host.
            "https://app.example//evil.example/",
        ] {
            assert_eq!(on_site(elsewhere), None, "{elsewhere}");
        }
    }

    #[test]
    fn relative_paths_are_kept() {
        assert_eq!(sanitize("/").as_deref(), Some("/"));
        assert_eq!(sanitize("/profile?tab=photo").as_deref(), Some("/profile?tab=photo"));
        assert_eq!(sanitize("/a/../b").as_deref(), Some("/b"));
    }

    #[test]
    fn other_origins_are_refused() {
        for attack in [
            "//evil.example",
            "/\\evil.example",
            "https://evil.example",
            "https:evil.example",
            "/%2F/evil.example",
            "/%5Cevil.example",
            "evil",
            "/\tevil",
            "/％2Fevil",
        ] {
            assert_eq!(sanitize(attack), None, "{attack:?}");
        }
    }

    #[test]
    fn paths_up_to_the_maximum_length_are_kept_longer_ones_refused() {
        let longest = format!("/{}", "a".repeat(MAX_LENGTH - 1));
        assert_eq!(sanitize(&longest).as_deref(), Some(longest.as_str()));
        assert_eq!(sanitize(&format!("{longest}a")), None);
    }

    #[test]
    fn encodings_nested_deeper_than_three_rounds_are_refused() {
        // %25252f decodes to %252f, %2f, then '/': three rounds, still a plain path segment.
        assert_eq!(sanitize("/a%25252fb").as_deref(), Some("/a%25252fb"));
        // One more level of nesting: still changing after three rounds.
        assert_eq!(sanitize("/a%2525252fb"), None);
    }

    #[test]
    fn the_root_and_display_are_the_path_itself() {
        assert_eq!(LocalPath::root().as_str(), "/");
        assert_eq!(LocalPath::parse("/x?y=1").unwrap().to_string(), "/x?y=1");
        assert_eq!(LocalPath::try_from("//evil".to_owned()), Err("not a same-origin path"));
    }

    #[test]
    fn dot_segments_that_resolve_to_a_double_slash_are_refused() {
        for attack in
            ["/.//evil.example", "/a/..//evil.example", "/%2e//evil.example", "/./%2e//evil.example", "/a/%2e%2e//x"]
        {
            assert_eq!(sanitize(attack), None, "{attack:?}");
        }
    }
}
