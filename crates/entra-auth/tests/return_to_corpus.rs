//! Every string of the open-redirect corpus is refused as a return path.

use entra_auth::LocalPath;

fn sanitize(raw: &str) -> Option<String> {
    LocalPath::parse(raw).map(String::from)
}

#[test]
fn every_open_redirect_attack_in_the_corpus_is_refused() {
    let corpus = include_str!("open_redirect_corpus.txt");
    let attacks: Vec<&str> = corpus.lines().filter(|line| !line.is_empty() && !line.starts_with("# ")).collect();
    assert!(attacks.len() >= 40, "the corpus is loaded");
    let accepted: Vec<(&str, String)> =
        attacks.into_iter().filter_map(|attack| sanitize(attack).map(|path| (attack, path))).collect();
    assert!(accepted.is_empty(), "accepted as same-origin paths: {accepted:?}");
}

#[test]
fn ordinary_paths_survive() {
    for (path, expected) in [
        ("/", "/"),
        ("/profile", "/profile"),
        ("/profile?tab=photo&x=1", "/profile?tab=photo&x=1"),
        ("/a%20b", "/a%20b"),
        ("/caf%C3%A9", "/caf%C3%A9"),
        ("/docs/../profile", "/profile"),
    ] {
        assert_eq!(sanitize(path).as_deref(), Some(expected), "{path}");
    }
}
