//! The Entra settings: tenant, client, secret, redirect URI, hosts, scopes, post-logout URI,
//! validated into entra-auth's own [`EntraConfig`].

use entra_auth::{Authority, EntraConfig, Tenant};

use crate::config::problems::Problems;
use crate::config::settings::{Settings, set};

/// `DOWNSTREAM_API_URL` and `DOWNSTREAM_API_SCOPES`: both or neither.
pub(crate) fn downstream_api(
    settings: &Settings,
    problems: &mut Problems,
) -> Option<Option<(url::Url, entra_auth::ResourceScopes)>> {
    match (set(&settings.downstream_api_url), set(&settings.downstream_api_scopes)) {
        (None, None) => Some(None),
        (Some(url), Some(scopes)) => {
            let url = problems
                .url("DOWNSTREAM_API_URL", url, "https://api.example/v1")
                .filter(|url| problems.https_unless_loopback("DOWNSTREAM_API_URL", url));
            let scopes = match scopes.parse::<entra_auth::ResourceScopes>() {
                Ok(scopes) => Some(scopes),
                Err(err) => {
                    problems.add("DOWNSTREAM_API_SCOPES", format!("{err}."));
                    None
                }
            };
            Some(Some((url?, scopes?)))
        }
        (Some(_), None) => {
            problems.add(
                "DOWNSTREAM_API_SCOPES",
                "is required with DOWNSTREAM_API_URL, e.g. api://<app id>/access_as_user.",
            );
            None
        }
        (None, Some(_)) => {
            problems.add("DOWNSTREAM_API_URL", "is required with DOWNSTREAM_API_SCOPES: the API's base URL.");
            None
        }
    }
}

/// `TENANT_ID`, `CLIENT_ID`, the credential (see `credential.rs`), `REDIRECT_URI`, `AUTHORITY_HOST`, `GRAPH_ENDPOINT`,
/// `SCOPES`, `POST_LOGOUT_REDIRECT_URI`.
pub(crate) fn validate(settings: &Settings, problems: &mut Problems) -> Option<EntraConfig> {
    let tenant = problems
        .required(
            "TENANT_ID",
            &settings.tenant_id,
            "Set it to the Directory (tenant) ID on the app registration's Overview page.",
        )
        .and_then(|value| match value.parse::<Tenant>() {
            Ok(tenant) => Some(tenant),
            Err(err) => {
                problems.add("TENANT_ID", err.to_string());
                None
            }
        });
    let client_id = problems
        .required(
            "CLIENT_ID",
            &settings.client_id,
            "Set it to the Application (client) ID on the app registration's Overview page.",
        )
        .and_then(|value| match uuid::Uuid::parse_str(&value) {
            Ok(_) => Some(value),
            Err(_) => {
                problems.add(
                    "CLIENT_ID",
                    format!("'{value}' is not a GUID; use the Application (client) ID from the app registration's Overview page."),
                );
                None
            }
        });
    let credential = crate::config::credential::validate(settings, problems);
    let redirect_uri = problems
        .required(
            "REDIRECT_URI",
            &settings.redirect_uri,
            "Set it to the callback URL registered on the app registration, e.g. https://<site>/callback.",
        )
        .and_then(|value| problems.url("REDIRECT_URI", &value, "https://<site>/callback"))
        .filter(|url| {
            if url.fragment().is_some() {
                problems.add("REDIRECT_URI", "must not contain a #fragment.");
                return false;
            }
            // The callback is served at this path, and a segment starting with `:` or `*` would
            // be read as a route parameter, not literally.
            if url.path_segments().into_iter().flatten().any(|segment| segment.starts_with([':', '*'])) {
                problems.add(
                    "REDIRECT_URI",
                    format!(
                        "its path {} has a segment starting with ':' or '*', which cannot be a route of its own; use a plain path such as https://<site>/callback.",
                        url.path()
                    ),
                );
                return false;
            }
            problems.https_unless_loopback("REDIRECT_URI", url)
        });
    let authority_host = problems
        .resolved("AUTHORITY_HOST", &settings.authority_host)
        .and_then(|value| problems.url("AUTHORITY_HOST", &value, entra_auth::PUBLIC_CLOUD_HOST))
        .filter(|url| problems.https_unless_loopback("AUTHORITY_HOST", url));
    let graph_endpoint = problems
        .resolved("GRAPH_ENDPOINT", &settings.graph_endpoint)
        .and_then(|value| problems.url("GRAPH_ENDPOINT", &value, entra_auth::DEFAULT_GRAPH_ENDPOINT))
        .filter(|url| problems.https_unless_loopback("GRAPH_ENDPOINT", url));
    let scopes: Vec<String> = settings.scopes.split_whitespace().map(str::to_owned).collect();
    if scopes.iter().any(|s| s.contains(',')) {
        problems.add("SCOPES", "separate scopes with spaces, not commas (e.g. 'User.Read Mail.Read').");
    }
    // Unset: entra-auth's default, the redirect URI (the callback serves the landing).
    let post_logout_redirect_uri = match &settings.post_logout_redirect_uri {
        Some(value) if !value.trim().is_empty() => Some(
            problems
                .resolved("POST_LOGOUT_REDIRECT_URI", value)
                .and_then(|value| problems.url("POST_LOGOUT_REDIRECT_URI", &value, "https://<site>/"))
                .filter(|url| problems.https_unless_loopback("POST_LOGOUT_REDIRECT_URI", url)),
        ),
        _ => None,
    };
    let (tenant, client_id, credential, redirect_uri, authority_host, graph_endpoint) =
        (tenant?, client_id?, credential?, redirect_uri?, authority_host?, graph_endpoint?);
    let mut config = EntraConfig::new(Authority::new(authority_host, tenant), client_id, credential, redirect_uri)
        .with_scopes(scopes)
        .with_graph_endpoint(graph_endpoint)
        // The home page shows the Graph profile's name and email.
        .with_profile_at_sign_in(true)
        // The app answers Graph's claims challenges (re-authorizing with `claims=`), so it can
        // declare continuous access evaluation: a revoked user loses Graph access at once.
        .with_client_capabilities(["cp1"]);
    if let Some(uri) = post_logout_redirect_uri {
        config = config.with_post_logout_redirect_uri(uri?);
    }
    Some(config)
}
