//! The redirect guarantee, stated as a property over generated inputs: whatever goes in, what
//! comes out of `LocalPath::parse` is a single-slash absolute path that stays on the site's
//! origin when a browser resolves it (dot segments, encodings, slashes, backslashes, unicode).

use entra_auth::LocalPath;
use proptest::prelude::*;
use url::Url;

/// Pieces attackers combine: separators, dots (plain and encoded), encodings of `/` and `\`,
/// look-alike unicode, schemes, hosts and ordinary segments.
fn piece() -> impl Strategy<Value = String> {
    prop_oneof![
        Just("/".to_owned()),
        Just("//".to_owned()),
        Just("\\".to_owned()),
        Just(".".to_owned()),
        Just("..".to_owned()),
        Just("%2e".to_owned()),
        Just("%2E%2e".to_owned()),
        Just("%2f".to_owned()),
        Just("%2F".to_owned()),
        Just("%5c".to_owned()),
        Just("%252f".to_owned()),
        Just("%25252f".to_owned()),
        Just("%09".to_owned()),
        Just("\t".to_owned()),
        Just("\n".to_owned()),
        Just("／".to_owned()),
        Just("＼".to_owned()),
        Just("。".to_owned()),
        Just("https:".to_owned()),
        Just("javascript:".to_owned()),
        Just("@".to_owned()),
        Just("?".to_owned()),
        Just("#".to_owned()),
        Just("evil.example".to_owned()),
        Just("profile".to_owned()),
        "[a-z0-9]{1,6}",
        "\\PC{1,3}",
    ]
}

fn candidate() -> impl Strategy<Value = String> {
    (any::<bool>(), proptest::collection::vec(piece(), 0..8)).prop_map(|(leading_slash, pieces)| {
        let body = pieces.concat();
        if leading_slash { format!("/{body}") } else { body }
    })
}

/// What a browser does with `Location: {path}` on `https://site.example/some/page`.
fn browser_target(path: &str) -> Option<Url> {
    // Browsers strip tabs and newlines and read '\' as '/' before resolving.
    let cleaned: String =
        path.chars().filter(|c| !matches!(c, '\t' | '\n' | '\r')).map(|c| if c == '\\' { '/' } else { c }).collect();
    Url::parse("https://site.example/some/page").ok()?.join(&cleaned).ok()
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 4096, ..ProptestConfig::default() })]

    #[test]
    fn every_accepted_path_stays_on_the_site(raw in candidate()) {
        if let Some(path) = LocalPath::parse(&raw) {
            let path = path.as_str();
            prop_assert!(path.starts_with('/') && !path.starts_with("//") && !path.starts_with("/\\"), "{raw:?} -> {path:?}");
            prop_assert!(path.bytes().all(|b| b.is_ascii_graphic()), "{raw:?} -> {path:?}");
            let target = browser_target(path).expect("a browser can resolve it");
            prop_assert_eq!(target.origin().ascii_serialization(), "https://site.example", "{:?} -> {:?}", raw, path);
            // Decoded once more (a proxy in front of the app might), it still is a same-origin path.
            let decoded = percent_encoding::percent_decode_str(path).decode_utf8_lossy().into_owned();
            prop_assert!(!decoded.starts_with("//") && !decoded.contains('\\'), "{raw:?} -> {path:?} decodes to {decoded:?}");
            // Parsing the output again changes nothing: nothing is left to resolve.
            let again = LocalPath::parse(path);
            prop_assert_eq!(again.as_ref().map(LocalPath::as_str), Some(path));
        }
    }
}

#[test]
fn the_property_generator_reaches_the_dot_segment_attack() {
    // The family that broke the old sanitiser is refused, and ordinary paths are still accepted.
    assert_eq!(LocalPath::parse("/.//evil.example"), None);
    assert_eq!(LocalPath::parse("/profile").map(String::from).as_deref(), Some("/profile"));
}
