//! Scope parsing as Entra does it: bare names and `https://graph.microsoft.com/...` both mean Graph
//! permissions, `api://<app id>/<name>` is a permission an app registration exposes; the OIDC scopes
//! are handled by the token service itself. One token is for one resource.

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
    if let Some(rest) = scope.strip_prefix(API_SCHEME) {
        // api://<app id>/<permission>: kept whole; the token service checks the app exists.
        let well_formed = rest.split_once('/').is_some_and(|(app, name)| {
            uuid::Uuid::parse_str(app).is_ok()
                && !name.is_empty()
                && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '.' || c == '_')
        });
        if !well_formed {
            return Err(OAuthError::new(
                "invalid_scope",
                70011,
                format!(
                    "The provided value for the input parameter 'scope' is not valid. The scope {scope} is not valid."
                ),
            ));
        }
        return Ok(vec![scope.to_owned()]);
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

/// The resource of a client-credentials `scope`: exactly one `<resource>/.default`
/// (`https://graph.microsoft.com/.default`, `api://<app id>/.default`), as Entra requires
/// (AADSTS1002012 otherwise).
pub(crate) fn default_scope_resource(raw: &str) -> Result<Resource, OAuthError> {
    let invalid = || {
        OAuthError::new(
            "invalid_scope",
            1002012,
            format!(
                "The provided value for scope {raw} is not valid. Client credential flows must have a scope value with /.default suffixed to the resource identifier (application ID URI)."
            ),
        )
    };
    let mut scopes = raw.split_whitespace();
    let (Some(scope), None) = (scopes.next(), scopes.next()) else { return Err(invalid()) };
    let resource = scope.strip_suffix("/.default").ok_or_else(invalid)?;
    if GRAPH_RESOURCES.iter().any(|graph| graph.trim_end_matches('/') == resource) {
        return Ok(Resource::Graph);
    }
    match resource.strip_prefix(API_SCHEME) {
        Some(app) if uuid::Uuid::parse_str(app).is_ok() => Ok(Resource::Api(resource.to_owned())),
        _ => Err(OAuthError::new(
            "invalid_resource",
            500011,
            format!("The resource principal named {resource} was not found in the tenant."),
        )),
    }
}

/// The resource permissions among `scopes` (everything but the OIDC scopes).
pub(crate) fn graph_scopes(scopes: &[String]) -> Vec<String> {
    scopes.iter().filter(|s| !is_oidc_scope(s)).cloned().collect()
}

const API_SCHEME: &str = "api://";
/// The audience of Graph access tokens.
pub(crate) const GRAPH_AUDIENCE: &str = "https://graph.microsoft.com";

/// What a token is for: Microsoft Graph, or an API an app registration exposes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Resource {
    Graph,
    /// `api://<app id>`.
    Api(String),
}

impl Resource {
    /// The access token's `aud`.
    pub(crate) fn audience(&self) -> &str {
        match self {
            Resource::Graph => GRAPH_AUDIENCE,
            Resource::Api(uri) => uri,
        }
    }
}

/// The one resource `scopes` are for (Graph when only OIDC scopes are asked); a request mixing
/// resources is refused as Entra refuses it (AADSTS28000).
pub(crate) fn resource_of(scopes: &[String]) -> Result<Resource, OAuthError> {
    let mut resource = None;
    for scope in scopes.iter().filter(|scope| !is_oidc_scope(scope)) {
        let this = match scope.strip_prefix(API_SCHEME).and_then(|rest| rest.split_once('/')) {
            Some((app, _)) => Resource::Api(format!("{API_SCHEME}{app}")),
            None => Resource::Graph,
        };
        match &resource {
            Some(known) if *known != this => {
                return Err(OAuthError::new(
                    "invalid_request",
                    28000,
                    "Provided value for the input parameter scope is not valid because it contains more than one resource. Scope openid profile offline_access and the permissions of one resource are allowed.",
                ));
            }
            _ => resource = Some(this),
        }
    }
    Ok(resource.unwrap_or(Resource::Graph))
}

/// A permission's name inside its resource (`scp`): `Mail.Read`, or `access_as_user` of
/// `api://<app id>/access_as_user`.
pub(crate) fn permission_name(scope: &str) -> &str {
    match scope.strip_prefix(API_SCHEME).and_then(|rest| rest.split_once('/')) {
        Some((_, name)) => name,
        None => scope,
    }
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
    fn api_scopes_name_their_resource_and_resources_do_not_mix() {
        let api = "api://3f1c9a2e-8b4d-4c6f-a1e7-0d5b2c8e9f41/access_as_user";
        let scopes = parse(&format!("openid offline_access {api}")).unwrap();
        assert_eq!(resource_of(&scopes).unwrap(), Resource::Api("api://3f1c9a2e-8b4d-4c6f-a1e7-0d5b2c8e9f41".into()));
        assert_eq!(permission_name(api), "access_as_user");
        assert_eq!(resource_of(&parse("openid User.Read").unwrap()).unwrap(), Resource::Graph);
        assert_eq!(resource_of(&parse(&format!("User.Read {api}")).unwrap()).unwrap_err().code, 28000);
        assert_eq!(parse("api://not-a-guid/x").unwrap_err().code, 70011);
    }

    #[test]
    fn dot_default_expands_to_the_declared_permissions() {
        assert_eq!(parse("https://graph.microsoft.com/.default").unwrap(), vec!["User.Read".to_owned()]);
    }
}
