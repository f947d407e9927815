//! Who the upstream is told the user is, in App Service authentication's ("Easy Auth") headers
//! and the common `X-Forwarded-User` / `X-Forwarded-Email` pair; and the inbound headers and
//! cookies that never reach the upstream, whoever sent them. See `docs/PROXY.md`.

use axum::http::header::{self, HeaderMap, HeaderName, HeaderValue};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use entra_auth::TokenSet;
use entra_auth::axum::{AuthRoutes, SignedInUser};
use secrecy::ExposeSecret;
use std::borrow::Cow;
use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};

use serde::Serialize;

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

/// The user's claims, Easy Auth's way: one entry per value, roles under `role_typ`.
pub(crate) fn claims(user: &SignedInUser) -> Vec<Claim<'_>> {
    fn claim<'a>(typ: &'a str, val: &'a str) -> Claim<'a> {
        Claim { typ, val: Cow::Borrowed(val) }
    }
    let (object_id, tenant_id) = (user.object_id.to_string(), user.tenant_id.to_string());
    let mut claims = vec![
        Claim { typ: OBJECT_ID_CLAIM_TYPE, val: Cow::Owned(object_id.clone()) },
        Claim { typ: "oid", val: Cow::Owned(object_id) },
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
    claims.extend(memberships.groups.iter().map(|group| claim("groups", group)));
    claims.extend(memberships.wids.iter().map(|wid| claim("wids", wid)));
    claims
}

/// `X-MS-CLIENT-PRINCIPAL-NAME`: the sign-in name, else the email.
fn principal_name(user: &SignedInUser) -> Option<&str> {
    user.username.as_deref().or(user.email.as_deref())
}

/// A header and its value, as set on a request bound upstream (or on a forward-auth answer).
type IdentityHeader = (HeaderName, HeaderValue);

/// The identity headers of `user`. Built through [`IdentityHeaderCache`] on the request path.
fn user_headers(user: &SignedInUser) -> Vec<IdentityHeader> {
    let claims = claims(user);
    let principal =
        ClientPrincipal { auth_typ: "aad", claims: &claims, name_typ: NAME_CLAIM_TYPE, role_typ: ROLE_CLAIM_TYPE };
    let principal = serde_json::to_vec(&principal).map(|json| STANDARD.encode(json)).unwrap_or_default();
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
fn token_headers(tokens: &TokenSet) -> Vec<IdentityHeader> {
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
}

/// foldhash rather than SipHash: a user is hashed on every signed-in request, and the keys are
/// users who signed in, not values a client picks (foldhash is seeded per process all the same).
type CachedHeaders = HashMap<SignedInUser, Arc<[IdentityHeader]>, foldhash::fast::RandomState>;

impl IdentityHeaderCache {
    /// A cache of at most `limit` users.
    pub(crate) fn new(limit: usize) -> Self {
        Self { entries: Mutex::new(CachedHeaders::default()), limit: limit.max(1) }
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
        let headers: Arc<[IdentityHeader]> = user_headers(user).into();
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
    tokens: Option<&TokenSet>,
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
        serde_json::from_value(serde_json::json!({
            "object_id": object_id, "tenant_id": "7e6b1c4a-2f0d-4a8e-9c3b-5d1e8f2a6b90",
            "name": "Adele Vance", "email": "adele@contoso.example", "username": "adele@contoso.example",
            "sid": null, "login_hint": null, "memberships": {"roles": roles, "groups": [], "wids": [], "groups_from_graph": false}
        }))
        .unwrap()
    }

    fn principal(headers: &[IdentityHeader]) -> serde_json::Value {
        let (_, value) = headers.iter().find(|(name, _)| name == "x-ms-client-principal").unwrap();
        serde_json::from_slice(&STANDARD.decode(value.as_bytes()).unwrap()).unwrap()
    }

    #[test]
    fn cached_headers_are_the_users_own_and_follow_a_change_of_memberships() {
        let cache = IdentityHeaderCache::new(8);
        let reader = user("5b9cf4a2-7f43-4bd6-9d8b-0b6a4e3c2d10", &["Reader"]);
        assert_eq!(*cache.headers(&reader), *user_headers(&reader));
        assert_eq!(*cache.headers(&reader), *user_headers(&reader), "served from the cache");
        // A refresh renewed the memberships: a different user value, so new headers.
        let admin = user("5b9cf4a2-7f43-4bd6-9d8b-0b6a4e3c2d10", &["Reader", "Admin"]);
        let roles = |headers: &[IdentityHeader]| {
            principal(headers)["claims"]
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
        let cache = IdentityHeaderCache::new(3);
        for n in 0..10 {
            let user = user(&format!("5b9cf4a2-7f43-4bd6-9d8b-0b6a4e3c2d{n:02}"), &[]);
            let headers = cache.headers(&user);
            assert!(headers.iter().all(|(name, _)| !name.as_str().starts_with("x-ms-token-")));
            assert!(cache.len() <= 3, "{} users cached", cache.len());
        }
    }

    #[test]
    fn token_headers_are_added_to_the_cached_ones_and_marked_sensitive() {
        let cache = IdentityHeaderCache::new(8);
        let adele = user("5b9cf4a2-7f43-4bd6-9d8b-0b6a4e3c2d10", &[]);
        let tokens: TokenSet = serde_json::from_value(serde_json::json!({
            "access_token": "access.token.value", "expires_at": 1_900_000_000u64, "refresh_token": "refresh",
            "id_token": "id.token.value", "scopes": ["openid"], "lifetime": 3600
        }))
        .unwrap();
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
