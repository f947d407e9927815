//! Scope parsing as Entra does it for Graph: bare names and `https://graph.microsoft.com/...` both
//! mean Graph permissions; the OIDC scopes are handled by the token service itself.

use crate::error::OAuthError;

const OIDC_SCOPES: [&str; 4] = ["openid", "profile", "email", "offline_access"];
const GRAPH_RESOURCES: [&str; 2] = ["https://graph.microsoft.com/", "00000003-0000-0000-c000-000000000000/"];
/// What `.default` stands for: the permissions the built-in app registration declares.
const DEFAULT_GRAPH_SCOPES: [&str; 1] = ["User.Read"];

/// Whether a scope is one of the OpenID Connect scopes (no consent needed, not in `scp`).
pub(crate) fn is_oidc_scope(scope: &str) -> bool {
    OIDC_SCOPES.iter().any(|oidc| oidc.eq_ignore_ascii_case(scope))
}

/// Parses a space-separated `scope` parameter into normalised scope names, refusing what Entra
/// would refuse: no scope at all, resources other than Graph, characters no permission has.
pub(crate) fn parse(raw: &str) -> Result<Vec<String>, OAuthError> {
    let mut scopes: Vec<String> = Vec::new();
    for scope in raw.split_whitespace() {
        let normalised = normalise(scope)?;
        for name in normalised {
            if !scopes.iter().any(|known| known.eq_ignore_ascii_case(&name)) {
                scopes.push(name);
            }
        }
    }
    if scopes.is_empty() {
        return Err(OAuthError::new(
            "invalid_request",
            900144,
            "The request body must contain the following parameter: 'scope'.",
        ));
    }
    Ok(scopes)
}

fn normalise(scope: &str) -> Result<Vec<String>, OAuthError> {
    if is_oidc_scope(scope) {
        return Ok(vec![scope.to_lowercase()]);
    }
    let name = GRAPH_RESOURCES.iter().find_map(|resource| scope.strip_prefix(resource)).unwrap_or(scope);
    if name == ".default" {
        return Ok(DEFAULT_GRAPH_SCOPES.iter().map(|s| (*s).to_owned()).collect());
    }
    if name.contains("://") || name.contains('/') {
        return Err(OAuthError::new(
            "invalid_resource",
            500011,
            format!("The resource principal named {scope} was not found in the tenant."),
        ));
    }
    let well_formed = name.chars().next().is_some_and(|c| c.is_ascii_alphabetic())
        && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '.' || c == '_');
    if !well_formed {
        return Err(OAuthError::new(
            "invalid_scope",
            70011,
            format!("The provided value for the input parameter 'scope' is not valid. The scope {scope} is not valid."),
        ));
    }
    Ok(vec![name.to_owned()])
}

/// The Graph permissions among `scopes` (what goes into an access token's `scp`).
pub(crate) fn graph_scopes(scopes: &[String]) -> Vec<String> {
    scopes.iter().filter(|s| !is_oidc_scope(s)).cloned().collect()
}

/// Whether `requested` asks for nothing beyond `granted` (refresh may narrow, never widen).
pub(crate) fn is_subset(requested: &[String], granted: &[String]) -> bool {
    requested.iter().all(|r| granted.iter().any(|g| g.eq_ignore_ascii_case(r)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn graph_prefix_and_bare_names_mean_the_same_permission() {
        let scopes = parse("openid https://graph.microsoft.com/User.Read User.Read").unwrap();
        assert_eq!(scopes, vec!["openid".to_owned(), "User.Read".to_owned()]);
    }

    #[test]
    fn other_resources_and_odd_characters_are_refused() {
        assert_eq!(parse("https://evil.example/x").unwrap_err().code, 500011);
        assert_eq!(parse("User.Read<script>").unwrap_err().code, 70011);
        assert_eq!(parse("   ").unwrap_err().code, 900144);
    }

    #[test]
    fn dot_default_expands_to_the_declared_permissions() {
        assert_eq!(parse("https://graph.microsoft.com/.default").unwrap(), vec!["User.Read".to_owned()]);
    }
}
