//! Where to send the user after sign-in: a same-origin relative path, or nothing. Anything that a
//! browser could read as another origin (`//evil`, `/\evil`, `https:evil`, encoded or unicode
//! variants) is refused.

use url::Url;

const MAX_LENGTH: usize = 2048;
/// A base no real request can have, to let the URL parser resolve the candidate for us.
const PROBE_BASE: &str = "http://return-to.invalid/";

/// Returns the path (with query) to redirect to, or `None` when `raw` is not a same-origin relative
/// path.
pub fn sanitize(raw: &str) -> Option<String> {
    if raw.is_empty() || raw.len() > MAX_LENGTH || !raw.starts_with('/') {
        return None;
    }
    // Raw: what the browser parses. It strips tabs and newlines and reads '\\' as '/', so none
    // of those, no whitespace, nothing outside ASCII (full-width '／' and friends).
    if raw.starts_with("//") || raw.contains('\\') || raw.chars().any(|c| c.is_whitespace() || c.is_control() || !c.is_ascii()) {
        return None;
    }
    // Decoded: what a proxy or framework further along might see; encoded slashes, backslashes
    // and control characters are refused too (double encoding included).
    let mut decoded = raw.to_owned();
    for _ in 0..3 {
        decoded = percent_decode(&decoded)?;
        if decoded.starts_with("//") || decoded.contains('\\') || decoded.chars().any(char::is_control) {
            return None;
        }
    }
    let base = Url::parse(PROBE_BASE).ok()?;
    let resolved = base.join(raw).ok()?;
    if resolved.origin() != base.origin() {
        return None;
    }
    let mut path = resolved.path().to_owned();
    if let Some(query) = resolved.query() {
        path.push('?');
        path.push_str(query);
    }
    Some(path)
}

fn percent_decode(raw: &str) -> Option<String> {
    let bytes = raw.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = raw.get(i + 1..i + 3)?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn relative_paths_are_kept() {
        assert_eq!(sanitize("/").as_deref(), Some("/"));
        assert_eq!(sanitize("/profile?tab=photo").as_deref(), Some("/profile?tab=photo"));
        assert_eq!(sanitize("/a/../b").as_deref(), Some("/b"));
    }

    #[test]
    fn other_origins_are_refused() {
        for attack in ["//evil.example", "/\\evil.example", "https://evil.example", "https:evil.example", "/%2F/evil.example", "/%5Cevil.example", "evil", "/\tevil", "/％2Fevil"] {
            assert_eq!(sanitize(attack), None, "{attack:?}");
        }
    }
}
