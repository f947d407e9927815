//! Who the upstream is told the user is, in App Service authentication's ("Easy Auth") headers
//! and the common `X-Forwarded-User` / `X-Forwarded-Email` pair; and the inbound headers and
//! cookies that never reach the upstream, whoever sent them. See `docs/PROXY.md`.

use axum::http::header::{self, HeaderMap, HeaderName, HeaderValue};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use entra_auth::axum::{AuthRoutes, SignedInUser};
use secrecy::{ExposeSecret, SecretString};
use std::borrow::Cow;
use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};

use serde::Serialize;
use serde_json::json;
use url::Url;
use uuid::Uuid;

use crate::config::ProxyConfig;
use crate::proxy::forward::{folded, remove_headers_where};

/// Easy Auth's claim type for the name (`name_typ`) and for roles (`role_typ`).
pub const NAME_CLAIM_TYPE: &str = "http://schemas.xmlsoap.org/ws/2005/05/identity/claims/emailaddress";
pub const ROLE_CLAIM_TYPE: &str = "http://schemas.microsoft.com/ws/2008/06/identity/claims/role";
const OBJECT_ID_CLAIM_TYPE: &str = "http://schemas.microsoft.com/identity/claims/objectidentifier";
const TENANT_ID_CLAIM_TYPE: &str = "http://schemas.microsoft.com/identity/claims/tenantid";

/// Header names a client must never be able to set: the upstream trusts them. Spelt with
/// underscores too (see [`folded`]).
fn is_identity_header(name: &str) -> bool {
    let name = folded(name);
    name.starts_with("x-ms-client-principal")
        || name.starts_with("x-ms-token-")
        || matches!(&*name, "x-forwarded-user" | "x-forwarded-email" | "x-forwarded-preferred-username")
}

/// One claim, as Easy Auth lists them (borrowed from the user: built on every proxied request).
#[derive(Clone, Debug, Serialize, PartialEq, Eq)]
pub struct Claim<'a> {
    /// Claim type.
    pub typ: &'a str,
    /// Value.
    pub val: Cow<'a, str>,
}

/// `X-MS-CLIENT-PRINCIPAL`, decoded.
#[derive(Serialize)]
struct ClientPrincipal<'a> {
    auth_typ: &'static str,
    claims: &'a [Claim<'a>],
    name_typ: &'static str,
    role_typ: &'static str,
}

/// What the app behind is told of the user's groups: those `PROXY_PRINCIPAL_GROUPS` lists (all
/// by default), as long as `X-MS-CLIENT-PRINCIPAL` stays within `PROXY_PRINCIPAL_MAX_BYTES`.
#[derive(Clone, Debug)]
pub(crate) struct PrincipalOptions {
    groups: Option<Vec<Uuid>>,
    max_bytes: usize,
    /// Where the overage claim sends the app for the whole list (`GRAPH_ENDPOINT`, no `/` last).
    graph_endpoint: String,
}

impl PrincipalOptions {
    /// The options of `proxy` (every group and the default size outside proxy mode, where no
    /// principal is sent).
    pub(crate) fn new(proxy: Option<&ProxyConfig>, graph_endpoint: &Url) -> Self {
        Self {
            groups: proxy.and_then(|proxy| proxy.principal_groups.clone()),
            max_bytes: proxy.map_or(8000, |proxy| proxy.principal_max_bytes),
            graph_endpoint: graph_endpoint.as_str().trim_end_matches('/').to_owned(),
        }
    }

    fn shows(&self, group: &str) -> bool {
        match &self.groups {
            None => true,
            Some(listed) => Uuid::parse_str(group).is_ok_and(|id| listed.contains(&id)),
        }
    }
}

/// The user's claims, Easy Auth's way (one entry per value, roles under `role_typ`), and
/// `X-MS-CLIENT-PRINCIPAL`'s value. Groups come last, and go as a whole: when listing them would
/// make the header larger than the app behind's front end may take (nginx, Apache and gunicorn
/// refuse a header line over 8 KB, so that user could reach nothing), Entra's own overage claim
/// stands in for them, as in a token of someone in more than 200 groups, pointing at Microsoft
/// Graph's list (docs/PROXY.md, "Users in many groups").
fn principal<'a>(user: &'a SignedInUser, options: &PrincipalOptions) -> (Vec<Claim<'a>>, String) {
    fn claim<'a>(typ: &'a str, val: &'a str) -> Claim<'a> {
        Claim { typ, val: Cow::Borrowed(val) }
    }
    let (object_id, tenant_id) = (user.object_id.to_string(), user.tenant_id.to_string());
    let mut claims = vec![
        Claim { typ: OBJECT_ID_CLAIM_TYPE, val: Cow::Owned(object_id.clone()) },
        Claim { typ: "oid", val: Cow::Owned(object_id.clone()) },
        Claim { typ: TENANT_ID_CLAIM_TYPE, val: Cow::Owned(tenant_id.clone()) },
        Claim { typ: "tid", val: Cow::Owned(tenant_id) },
        claim("name", &user.name),
    ];
    if let Some(username) = &user.username {
        claims.push(claim("preferred_username", username));
    }
    if let Some(name) = principal_name(user) {
        claims.push(claim(NAME_CLAIM_TYPE, name));
    }
    let memberships = &user.memberships;
    claims.extend(memberships.roles.iter().map(|role| claim(ROLE_CLAIM_TYPE, role)));
    claims.extend(memberships.wids.iter().map(|wid| claim("wids", wid)));
    let without_groups = claims.len();
    claims.extend(memberships.groups.iter().filter(|group| options.shows(group)).map(|group| claim("groups", group)));
    let encoded = principal_value(&claims);
    if encoded.len() <= options.max_bytes || claims.len() == without_groups {
        return (claims, encoded);
    }
    claims.truncate(without_groups);
    let endpoint = format!("{}/v1.0/users/{object_id}/transitiveMemberOf", options.graph_endpoint);
    claims.push(Claim { typ: "_claim_names", val: Cow::Owned(json!({ "groups": "src1" }).to_string()) });
    let sources = json!({ "src1": { "endpoint": endpoint } }).to_string();
    claims.push(Claim { typ: "_claim_sources", val: Cow::Owned(sources) });
    let encoded = principal_value(&claims);
    if encoded.len() > options.max_bytes {
        tracing::warn!(
            bytes = encoded.len(),
            "a user's X-MS-CLIENT-PRINCIPAL is larger than PROXY_PRINCIPAL_MAX_BYTES even without groups (many app roles?)"
        );
    }
    (claims, encoded)
}

/// `X-MS-CLIENT-PRINCIPAL`'s value: Easy Auth's JSON, base64-encoded.
fn principal_value(claims: &[Claim<'_>]) -> String {
    let principal = ClientPrincipal { auth_typ: "aad", claims, name_typ: NAME_CLAIM_TYPE, role_typ: ROLE_CLAIM_TYPE };
    serde_json::to_vec(&principal).map(|json| STANDARD.encode(json)).unwrap_or_default()
}

/// `X-MS-CLIENT-PRINCIPAL-NAME` (and `/.auth/me`'s `user_id`): the sign-in name, else the
/// email, else the name: an application calling for itself has neither of the first two, and
/// its client id for a name (see `SignedInUser::from_access_token`).
pub(crate) fn principal_name(user: &SignedInUser) -> Option<&str> {
    let name = Some(user.name.as_str()).filter(|name| !name.is_empty());
    user.username.as_deref().or(user.email.as_deref()).or(name)
}

/// A header and its value, as set on a request bound upstream (or on a forward-auth answer).
type IdentityHeader = (HeaderName, HeaderValue);

/// The identity headers of `user`. Built through [`IdentityHeaderCache`] on the request path.
fn user_headers(user: &SignedInUser, options: &PrincipalOptions) -> Vec<IdentityHeader> {
    let (_, principal) = principal(user, options);
    let object_id = user.object_id.to_string();
    let mut values: Vec<(&'static str, &str)> = vec![
        ("x-ms-client-principal", &principal),
        ("x-ms-client-principal-id", &object_id),
        ("x-ms-client-principal-idp", "aad"),
    ];
    if let Some(name) = principal_name(user) {
        values.push(("x-ms-client-principal-name", name));
        values.push(("x-forwarded-user", name));
    }
    if let Some(email) = &user.email {
        values.push(("x-forwarded-email", email));
    }
    header_values(values)
}

/// The token headers, for an upstream that asked for them (`PROXY_PASS_TOKENS`): never cached.
/// The tokens the app behind is given (`PROXY_PASS_TOKENS`; see `passed_tokens.rs`).
pub(crate) struct PassedTokens {
    /// An access token: the sign-in's, or one for `PROXY_ACCESS_TOKEN_SCOPES`.
    pub access_token: SecretString,
    /// When it expires, Unix seconds.
    pub expires_at: u64,
    /// The sign-in's ID token.
    pub id_token: Option<SecretString>,
}

fn token_headers(tokens: &PassedTokens) -> Vec<IdentityHeader> {
    let expires_on = tokens.expires_at.to_string();
    let mut values: Vec<(&'static str, &str)> = vec![
        ("x-ms-token-aad-access-token", tokens.access_token.expose_secret()),
        ("x-ms-token-aad-expires-on", &expires_on),
    ];
    if let Some(id_token) = &tokens.id_token {
        values.push(("x-ms-token-aad-id-token", id_token.expose_secret()));
    }
    header_values(values)
}

fn header_values(values: Vec<(&'static str, &str)>) -> Vec<IdentityHeader> {
    values
        .into_iter()
        // A name with characters a header cannot carry is left out rather than mangled.
        .filter_map(|(name, value)| {
            Some((HeaderName::from_static(name), HeaderValue::from_bytes(value.as_bytes()).ok()?))
        })
        .map(|(name, mut value)| {
            value.set_sensitive(name.as_str().starts_with("x-ms-token-"));
            (name, value)
        })
        .collect()
}

/// Identity headers already built, by user: a signed-in request would otherwise serialise and
/// base64-encode the same `X-MS-CLIENT-PRINCIPAL` every time (a third of what a proxied request
/// costs the proxy; see `docs/PERFORMANCE.md`). Keyed by the whole user, compared in full, so a
/// user whose memberships were renewed at a refresh is a new entry, never a stale one. Only users
/// who passed the access policy get here (no anonymous request adds an entry), and the cache is
/// bounded: when full it starts over. Holds no token.
pub(crate) struct IdentityHeaderCache {
    entries: Mutex<CachedHeaders>,
    limit: usize,
    options: PrincipalOptions,
}

/// foldhash rather than SipHash: a user is hashed on every signed-in request, and the keys are
/// users who signed in, not values a client picks (foldhash is seeded per process all the same).
type CachedHeaders = HashMap<SignedInUser, Arc<[IdentityHeader]>, foldhash::fast::RandomState>;

impl IdentityHeaderCache {
    /// A cache of at most `limit` users, whose principals are built with `options`.
    pub(crate) fn new(limit: usize, options: PrincipalOptions) -> Self {
        Self { entries: Mutex::new(CachedHeaders::default()), limit: limit.max(1), options }
    }

    /// The claims `X-MS-CLIENT-PRINCIPAL` gives for `user` (`/.auth/me` shows the same).
    pub(crate) fn claims<'a>(&self, user: &'a SignedInUser) -> Vec<Claim<'a>> {
        principal(user, &self.options).0
    }

    fn entries(&self) -> std::sync::MutexGuard<'_, CachedHeaders> {
        self.entries.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The identity headers of `user`, built at most once while it is cached.
    pub(crate) fn headers(&self, user: &SignedInUser) -> Arc<[IdentityHeader]> {
        if let Some(headers) = self.entries().get(user) {
            return headers.clone();
        }
        // Built outside the lock: two first requests of one user may both build; either is right.
        let headers: Arc<[IdentityHeader]> = user_headers(user, &self.options).into();
        let mut entries = self.entries();
        if entries.len() >= self.limit {
            entries.clear();
        }
        entries.insert(user.clone(), headers.clone());
        headers
    }

    /// Users cached now.
    #[cfg(test)]
    fn len(&self) -> usize {
        self.entries().len()
    }
}

/// Sets the identity headers for `user` (from `cache`) on `headers`, then the tokens' when the
/// upstream asked for them.
pub(crate) fn set_headers(
    headers: &mut HeaderMap,
    cache: &IdentityHeaderCache,
    user: &SignedInUser,
    tokens: Option<&PassedTokens>,
) {
    for (name, value) in cache.headers(user).iter() {
        headers.insert(name, value.clone());
    }
    for (name, value) in tokens.map(token_headers).unwrap_or_default() {
        headers.insert(name, value);
    }
}

/// Removes every identity header and every cookie of ours from a request bound upstream.
pub(crate) fn strip_inbound(headers: &mut HeaderMap, auth: &AuthRoutes) {
    remove_headers_where(headers, is_identity_header);
    let kept: Vec<String> = headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(';'))
        .map(str::trim)
        .filter(|pair| !pair.is_empty())
        .filter(|pair| !auth.is_own_cookie(pair.split('=').next().unwrap_or_default().trim()))
        .map(str::to_owned)
        .collect();
    headers.remove(header::COOKIE);
    if let Ok(value) = HeaderValue::from_str(&kept.join("; "))
        && !kept.is_empty()
    {
        headers.insert(header::COOKIE, value);
    }
}

/// Removes every `Set-Cookie` of the app behind that would set a cookie of ours: the session
/// cookie belongs to the proxy alone, and one set by the app (a bug, a header it lets users
/// choose) would sign the browser out, or into a session someone else chose.
pub(crate) fn strip_own_set_cookies(headers: &mut HeaderMap, auth: &AuthRoutes) {
    let is_own = |value: &HeaderValue| {
        let name = value.to_str().ok().and_then(|text| text.split('=').next()).unwrap_or_default();
        auth.is_own_cookie(name.trim())
    };
    if !headers.get_all(header::SET_COOKIE).iter().any(is_own) {
        return;
    }
    let kept: Vec<HeaderValue> =
        headers.get_all(header::SET_COOKIE).iter().filter(|value| !is_own(value)).cloned().collect();
    headers.remove(header::SET_COOKIE);
    for value in kept {
        headers.append(header::SET_COOKIE, value);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn user(object_id: &str, roles: &[&str]) -> SignedInUser {
        in_groups(object_id, roles, &[])
    }

    fn in_groups(object_id: &str, roles: &[&str], groups: &[String]) -> SignedInUser {
        serde_json::from_value(serde_json::json!({
            "object_id": object_id, "tenant_id": "7e6b1c4a-2f0d-4a8e-9c3b-5d1e8f2a6b90",
            "name": "Adele Vance", "email": "adele@contoso.example", "username": "adele@contoso.example",
            "sid": null, "login_hint": null, "memberships": {"roles": roles, "groups": groups, "wids": [], "groups_from_graph": false}
        }))
        .unwrap()
    }

    fn options(groups: Option<Vec<Uuid>>, max_bytes: usize) -> PrincipalOptions {
        PrincipalOptions { groups, max_bytes, graph_endpoint: "https://graph.microsoft.com".into() }
    }

    fn group(n: usize) -> String {
        Uuid::from_u128(0x9a0c_0000_0000_4000_8000_0000_0000_0000 + n as u128).to_string()
    }

    fn typed<'a>(claims: &'a [Claim<'_>], typ: &str) -> Vec<&'a str> {
        claims.iter().filter(|claim| claim.typ == typ).map(|claim| &*claim.val).collect()
    }

    #[test]
    fn groups_are_listed_while_the_principal_fits_and_give_way_to_the_overage_claim_as_a_whole() {
        const OID: &str = "5b9cf4a2-7f43-4bd6-9d8b-0b6a4e3c2d10";
        let groups = |count: usize| (0..count).map(group).collect::<Vec<_>>();
        let size =
            |count: usize| principal(&in_groups(OID, &["Reader"], &groups(count)), &options(None, 1 << 20)).1.len();
        // The most groups a principal of at most `max` bytes lists in full.
        let max = size(40);
        for (count, listed) in [(40, true), (41, false), (150, false)] {
            let adele = in_groups(OID, &["Reader"], &groups(count));
            let (claims, value) = principal(&adele, &options(None, max));
            assert!(value.len() <= max, "{count} groups: {} bytes", value.len());
            assert_eq!(value, principal_value(&claims), "the header is the claims");
            assert_eq!(typed(&claims, ROLE_CLAIM_TYPE), ["Reader"], "roles stay");
            assert_eq!(typed(&claims, "oid"), [OID]);
            match listed {
                true => {
                    assert_eq!(typed(&claims, "groups").len(), count);
                    assert!(typed(&claims, "_claim_names").is_empty());
                }
                false => {
                    assert!(typed(&claims, "groups").is_empty(), "{count}: all or none");
                    assert_eq!(typed(&claims, "_claim_names"), [r#"{"groups":"src1"}"#]);
                    let endpoint = format!(
                        r#"{{"src1":{{"endpoint":"https://graph.microsoft.com/v1.0/users/{OID}/transitiveMemberOf"}}}}"#
                    );
                    assert_eq!(typed(&claims, "_claim_sources"), [endpoint.as_str()]);
                }
            }
        }
        // No group, no overage claim, however small the limit.
        let reader = user(OID, &["Reader"]);
        let (claims, _) = principal(&reader, &options(None, 10));
        assert!(typed(&claims, "_claim_names").is_empty());
    }

    #[test]
    fn only_the_groups_asked_for_are_listed() {
        let adele = in_groups("5b9cf4a2-7f43-4bd6-9d8b-0b6a4e3c2d10", &[], &(0..300).map(group).collect::<Vec<_>>());
        let asked = vec![group(7).parse().unwrap(), group(299).to_uppercase().parse().unwrap(), Uuid::nil()];
        let (claims, _) = principal(&adele, &options(Some(asked), 8000));
        assert_eq!(typed(&claims, "groups"), [group(7), group(299)]);
        let (claims, _) = principal(&adele, &options(Some(Vec::new()), 8000));
        assert!(typed(&claims, "groups").is_empty() && typed(&claims, "_claim_names").is_empty());
    }

    fn decoded_principal(headers: &[IdentityHeader]) -> serde_json::Value {
        let (_, value) = headers.iter().find(|(name, _)| name == "x-ms-client-principal").unwrap();
        serde_json::from_slice(&STANDARD.decode(value.as_bytes()).unwrap()).unwrap()
    }

    #[test]
    fn cached_headers_are_the_users_own_and_follow_a_change_of_memberships() {
        let cache = IdentityHeaderCache::new(8, options(None, 8000));
        let reader = user("5b9cf4a2-7f43-4bd6-9d8b-0b6a4e3c2d10", &["Reader"]);
        assert_eq!(*cache.headers(&reader), *user_headers(&reader, &options(None, 8000)));
        assert_eq!(*cache.headers(&reader), *user_headers(&reader, &options(None, 8000)), "served from the cache");
        // A refresh renewed the memberships: a different user value, so new headers.
        let admin = user("5b9cf4a2-7f43-4bd6-9d8b-0b6a4e3c2d10", &["Reader", "Admin"]);
        let roles = |headers: &[IdentityHeader]| {
            decoded_principal(headers)["claims"]
                .as_array()
                .unwrap()
                .iter()
                .filter(|claim| claim["typ"] == ROLE_CLAIM_TYPE)
                .map(|claim| claim["val"].as_str().unwrap().to_owned())
                .collect::<Vec<_>>()
        };
        assert_eq!(roles(&cache.headers(&admin)), ["Reader", "Admin"]);
        assert_eq!(roles(&cache.headers(&reader)), ["Reader"]);
        assert_eq!(cache.len(), 2);
    }

    #[test]
    fn the_cache_holds_at_most_its_limit_and_no_token() {
        let cache = IdentityHeaderCache::new(3, options(None, 8000));
        for n in 0..10 {
            let user = user(&format!("5b9cf4a2-7f43-4bd6-9d8b-0b6a4e3c2d{n:02}"), &[]);
            let headers = cache.headers(&user);
            assert!(headers.iter().all(|(name, _)| !name.as_str().starts_with("x-ms-token-")));
            assert!(cache.len() <= 3, "{} users cached", cache.len());
        }
    }

    #[test]
    fn token_headers_are_added_to_the_cached_ones_and_marked_sensitive() {
        let cache = IdentityHeaderCache::new(8, options(None, 8000));
        let adele = user("5b9cf4a2-7f43-4bd6-9d8b-0b6a4e3c2d10", &[]);
        let tokens = PassedTokens {
            access_token: "access.token.value".into(),
            expires_at: 1_900_000_000,
            id_token: Some("id.token.value".into()),
        };
        let mut headers = HeaderMap::new();
        set_headers(&mut headers, &cache, &adele, Some(&tokens));
        assert_eq!(headers["x-ms-token-aad-access-token"], "access.token.value");
        assert_eq!(headers["x-ms-token-aad-id-token"], "id.token.value");
        assert_eq!(headers["x-ms-token-aad-expires-on"], "1900000000");
        assert!(headers["x-ms-token-aad-access-token"].is_sensitive());
        assert_eq!(headers["x-ms-client-principal-name"], "adele@contoso.example");
        let mut without = HeaderMap::new();
        set_headers(&mut without, &cache, &adele, None);
        assert!(without.keys().all(|name| !name.as_str().starts_with("x-ms-token-")));
        assert_eq!(without["x-ms-client-principal"], headers["x-ms-client-principal"]);
    }

    #[test]
    fn identity_headers_are_recognised_whatever_their_suffix() {
        for name in [
            "x-ms-client-principal",
            "x-ms-client-principal-name",
            "x-ms-token-aad-id-token",
            "x-forwarded-email",
            // What CGI-style servers read as the same headers.
            "x_ms_client_principal_id",
            "x-ms-token_aad-access-token",
            "x_forwarded_user",
        ] {
            assert!(is_identity_header(name), "{name}");
        }
        for name in ["x-forwarded-for", "x-ms-request-id", "cookie", "x_ms_request_id", "x-app_user"] {
            assert!(!is_identity_header(name), "{name}");
        }
    }
}
