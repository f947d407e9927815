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

use serde::Serialize;

/// Easy Auth's claim type for the name (`name_typ`) and for roles (`role_typ`).
pub const NAME_CLAIM_TYPE: &str = "http://schemas.xmlsoap.org/ws/2005/05/identity/claims/emailaddress";
pub const ROLE_CLAIM_TYPE: &str = "http://schemas.microsoft.com/ws/2008/06/identity/claims/role";
const OBJECT_ID_CLAIM_TYPE: &str = "http://schemas.microsoft.com/identity/claims/objectidentifier";
const TENANT_ID_CLAIM_TYPE: &str = "http://schemas.microsoft.com/identity/claims/tenantid";

/// Header names a client must never be able to set: the upstream trusts them.
fn is_identity_header(name: &str) -> bool {
    name.starts_with("x-ms-client-principal")
        || name.starts_with("x-ms-token-")
        || matches!(name, "x-forwarded-user" | "x-forwarded-email" | "x-forwarded-preferred-username")
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

/// The identity headers for `user` (and the tokens, when the upstream asked for them).
pub(crate) fn headers(user: &SignedInUser, tokens: Option<&TokenSet>) -> Vec<(HeaderName, HeaderValue)> {
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
    let expires_on = tokens.map(|tokens| tokens.expires_at.to_string());
    if let (Some(tokens), Some(expires_on)) = (tokens, &expires_on) {
        values.push(("x-ms-token-aad-access-token", tokens.access_token.expose_secret()));
        values.push(("x-ms-token-aad-expires-on", expires_on));
        if let Some(id_token) = &tokens.id_token {
            values.push(("x-ms-token-aad-id-token", id_token.expose_secret()));
        }
    }
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

/// Removes every identity header and every cookie of ours from a request bound upstream.
pub(crate) fn strip_inbound(headers: &mut HeaderMap, auth: &AuthRoutes) {
    let identity: Vec<HeaderName> = headers.keys().filter(|name| is_identity_header(name.as_str())).cloned().collect();
    for name in identity {
        headers.remove(name);
    }
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identity_headers_are_recognised_whatever_their_suffix() {
        for name in
            ["x-ms-client-principal", "x-ms-client-principal-name", "x-ms-token-aad-id-token", "x-forwarded-email"]
        {
            assert!(is_identity_header(name), "{name}");
        }
        for name in ["x-forwarded-for", "x-ms-request-id", "cookie"] {
            assert!(!is_identity_header(name), "{name}");
        }
    }
}
