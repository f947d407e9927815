//! Minting the tokens Entra issues: v2.0 ID tokens, Graph access tokens (JWTs our Graph accepts)
//! and opaque refresh tokens; plus the deliberately bad ID tokens of the fault switches.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use uuid::Uuid;

use crate::config::AccessTokenVersion;
use crate::directory;
use crate::directory::DirectoryUser;
use crate::faults::BadIdToken;
use crate::keys::SigningKey;
use crate::scopes::{self, Resource};
use crate::state::{CaeToken, EmulatorState, SignIn};

/// What a successful token request returns.
pub(crate) struct IssuedTokens {
    pub(crate) access_token: String,
    pub(crate) id_token: Option<String>,
    pub(crate) refresh_token: Option<String>,
    pub(crate) scopes: Vec<String>,
    pub(crate) expires_in: i64,
    pub(crate) client_info: Option<String>,
}

impl IssuedTokens {
    pub(crate) fn to_json(&self) -> Value {
        // Entra's `scope` lists what the access token grants: never `offline_access`.
        let granted: Vec<&str> = self
            .scopes
            .iter()
            .map(String::as_str)
            .filter(|scope| !scope.eq_ignore_ascii_case("offline_access"))
            .collect();
        let mut body = json!({
            "token_type": "Bearer",
            "scope": granted.join(" "),
            "expires_in": self.expires_in,
            "ext_expires_in": self.expires_in,
            "access_token": self.access_token,
        });
        if let Some(id_token) = &self.id_token {
            body["id_token"] = json!(id_token);
        }
        if let Some(refresh_token) = &self.refresh_token {
            body["refresh_token"] = json!(refresh_token);
        }
        if let Some(client_info) = &self.client_info {
            body["client_info"] = json!(client_info);
        }
        body
    }
}

/// The parameters of one issuance.
pub(crate) struct Issue<'a> {
    pub(crate) client_id: &'a str,
    pub(crate) scopes: &'a [String],
    pub(crate) sign_in: &'a SignIn,
    pub(crate) user: &'a DirectoryUser,
    pub(crate) nonce: Option<&'a str>,
    pub(crate) client_info: bool,
    /// The client declared the `cp1` capability (continuous access evaluation).
    pub(crate) cae: bool,
    /// Authentication contexts the sign-in satisfied (the access token's `acrs`).
    pub(crate) auth_contexts: &'a [String],
}

/// Issues access, ID and refresh tokens for a signed-in user.
pub(crate) fn issue(state: &EmulatorState, request: Issue<'_>) -> anyhow::Result<IssuedTokens> {
    let wants = |scope: &str| request.scopes.iter().any(|s| s.eq_ignore_ascii_case(scope));
    let lifetime = state.access_token_lifetime();
    let access_token = access_token(state, &request, lifetime)?;
    let id_token = if wants("openid") { Some(id_token(state, &request)?) } else { None };
    let refresh_token = wants("offline_access").then(|| state.new_secret_value("1.emu-rt."));
    state.record_issued(access_token.clone());
    if let Some(id_token) = &id_token {
        state.record_issued(id_token.clone());
    }
    let client_info = request.client_info.then(|| {
        let info = json!({ "uid": request.user.oid, "utid": request.user.tenant_id });
        URL_SAFE_NO_PAD.encode(info.to_string())
    });
    Ok(IssuedTokens {
        access_token,
        id_token,
        refresh_token,
        scopes: request.scopes.to_vec(),
        expires_in: lifetime,
        client_info,
    })
}

fn access_token(state: &EmulatorState, request: &Issue<'_>, lifetime: i64) -> anyhow::Result<String> {
    let now = state.clock.wall();
    let user = &request.user;
    let token_id = random_id();
    let resource = scopes::resource_of(request.scopes).unwrap_or(Resource::Graph);
    let scp = match &resource {
        Resource::Graph => request.scopes.join(" "),
        Resource::Api(_) => scopes::graph_scopes(request.scopes)
            .iter()
            .map(|scope| scopes::permission_name(scope))
            .collect::<Vec<_>>()
            .join(" "),
    };
    let mut claims = json!({
        "aud": resource.audience(),
        "iss": graph_token_issuer(user.tenant_id),
        "iat": now,
        "nbf": now,
        "exp": now + lifetime,
        "appid": request.client_id,
        "idtyp": "user",
        "name": user.user.display_name,
        "oid": user.oid,
        "scp": scp,
        "sid": request.sign_in.sid,
        "sub": pairwise_subject(user.oid, resource.audience()),
        "tid": user.tenant_id,
        "upn": user.user.user_principal_name,
        "uti": token_id,
        "ver": "1.0",
    });
    if let Resource::Api(uri) = &resource
        && let Some(api) = uri.strip_prefix("api://").and_then(|app| state.client(app))
    {
        // The user's roles in the API's app, its groups (or the overage claim) as the API's
        // registration asks.
        if let Some(object) = claims.as_object_mut() {
            let memberships = state.memberships();
            let limit = state.group_overage_limit;
            object.extend(directory::authorization_claims(&memberships, &api, user, user.tenant_id, limit));
        }
        if api.requested_access_token_version == AccessTokenVersion::V2 {
            as_v2(&mut claims, &api.client_id, state.issuer_for(user.tenant_id));
        }
    }
    if !request.auth_contexts.is_empty() {
        claims["acrs"] = json!(request.auth_contexts);
    }
    // Graph and the API judge expiry by the emulator's clock (which tests advance).
    let expires_at = state.clock.now() + lifetime;
    state.grants().access_tokens.insert(token_id.clone(), expires_at);
    if request.cae {
        claims["xms_cc"] = json!(["cp1"]);
        state.grants().cae_tokens.push(CaeToken { user_oid: user.oid, token_id, expires_at });
    }
    let keys = state.keys();
    match resource {
        Resource::Graph => sign_graph_token(keys.active(), &claims),
        Resource::Api(_) => sign_rs256(keys.active(), &claims),
    }
}

/// How an application proved itself (the token's `appidacr` / `azpacr`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum ClientProof {
    /// A client secret: `1`.
    Secret,
    /// A certificate or federated assertion: `2`.
    Assertion,
}

/// An application's own access token (client credentials) for `resource`: no user, the
/// application's service principal as `oid` and `sub`, `idtyp` `app`, and in `roles` the
/// application permissions it was granted on that resource. No ID or refresh token.
/// <https://learn.microsoft.com/en-us/entra/identity-platform/v2-oauth2-client-creds-grant-flow>
pub(crate) fn issue_app_only(
    state: &EmulatorState,
    client: &crate::config::ClientRegistration,
    resource: &Resource,
    tenant: Uuid,
    proof: ClientProof,
) -> anyhow::Result<IssuedTokens> {
    let now = state.clock.wall();
    let lifetime = state.access_token_lifetime();
    let token_id = random_id();
    let service_principal = directory::service_principal_id(&client.client_id);
    let prefix = format!("{}/", resource.audience());
    let roles: Vec<&str> =
        client.application_permissions.iter().filter_map(|granted| granted.strip_prefix(&prefix)).collect();
    let mut claims = json!({
        "aud": resource.audience(),
        "iss": graph_token_issuer(tenant),
        "iat": now,
        "nbf": now,
        "exp": now + lifetime,
        "appid": client.client_id,
        "appidacr": match proof { ClientProof::Secret => "1", ClientProof::Assertion => "2" },
        "idp": graph_token_issuer(tenant),
        "idtyp": "app",
        "oid": service_principal,
        "sub": service_principal,
        "tid": tenant,
        "uti": token_id,
        "ver": "1.0",
    });
    if !roles.is_empty() {
        claims["roles"] = json!(roles);
    }
    if let Resource::Api(uri) = resource
        && let Some(api) = uri.strip_prefix("api://").and_then(|app| state.client(app))
        && api.requested_access_token_version == AccessTokenVersion::V2
    {
        as_v2(&mut claims, &api.client_id, state.issuer_for(tenant));
    }
    state.grants().access_tokens.insert(token_id, state.clock.now() + lifetime);
    let access_token = match resource {
        Resource::Graph => sign_graph_token(state.keys().active(), &claims)?,
        Resource::Api(_) => sign_rs256(state.keys().active(), &claims)?,
    };
    state.record_issued(access_token.clone());
    Ok(IssuedTokens {
        access_token,
        id_token: None,
        refresh_token: None,
        scopes: vec![format!("{}/.default", resource.audience())],
        expires_in: lifetime,
        client_info: None,
    })
}

/// A v1.0 access token's claims made v2.0's, for an API whose registration asks for them.
fn as_v2(claims: &mut Value, api_client_id: &str, issuer: String) {
    let Some(claims) = claims.as_object_mut() else { return };
    claims.insert("aud".into(), json!(api_client_id));
    claims.insert("iss".into(), json!(issuer));
    if let Some(caller) = claims.remove("appid") {
        claims.insert("azp".into(), caller);
    }
    if let Some(proof) = claims.remove("appidacr") {
        claims.insert("azpacr".into(), proof);
    }
    claims.remove("idp");
    if let Some(upn) = claims.remove("upn") {
        claims.insert("preferred_username".into(), upn);
    }
    claims.insert("ver".into(), json!("2.0"));
}

/// Graph's access tokens are not for clients to validate: their header carries a `nonce`, and
/// the signature covers the header with the nonce's SHA-256 in its place, so a client that
/// verifies one as a plain JWT fails, as it would against Entra. Only Graph (see
/// [`graph_signed_form`]) undoes it. Tokens for other APIs are ordinary JWTs.
/// <https://learn.microsoft.com/entra/identity-platform/access-tokens#validate-tokens>
fn sign_graph_token(key: &SigningKey, claims: &Value) -> anyhow::Result<String> {
    let nonce = URL_SAFE_NO_PAD.encode(rand::random::<[u8; 32]>());
    let header = json!({ "typ": "JWT", "nonce": hashed_nonce(&nonce), "alg": "RS256", "x5t": key.kid, "kid": key.kid });
    let signed_header = URL_SAFE_NO_PAD.encode(header.to_string());
    let payload = URL_SAFE_NO_PAD.encode(claims.to_string());
    let signature = key.sign_rs256(format!("{signed_header}.{payload}").as_bytes())?;
    let sent_header = header.to_string().replace(&hashed_nonce(&nonce), &nonce);
    Ok(format!("{}.{payload}.{signature}", URL_SAFE_NO_PAD.encode(sent_header)))
}

fn hashed_nonce(nonce: &str) -> String {
    URL_SAFE_NO_PAD.encode(Sha256::digest(nonce.as_bytes()))
}

/// A Graph access token as it was signed: the header's `nonce` replaced by its SHA-256 (what
/// Graph does before checking the signature). Tokens without a nonce come back unchanged.
pub(crate) fn graph_signed_form(token: &str) -> Option<String> {
    let (header, rest) = token.split_once('.')?;
    let header = String::from_utf8(URL_SAFE_NO_PAD.decode(header).ok()?).ok()?;
    let fields: Value = serde_json::from_str(&header).ok()?;
    let Some(nonce) = fields.get("nonce").and_then(Value::as_str) else { return Some(token.to_owned()) };
    let signed =
        header.replacen(&format!("\"nonce\":\"{nonce}\""), &format!("\"nonce\":\"{}\"", hashed_nonce(nonce)), 1);
    Some(format!("{}.{rest}", URL_SAFE_NO_PAD.encode(signed)))
}

/// The issuers of access tokens for an app's API here: every tenant's, v1.0 and v2.0.
pub(crate) fn api_token_issuers(state: &EmulatorState) -> Vec<String> {
    let v1 = state.tenants.iter().map(|tenant| graph_token_issuer(*tenant));
    v1.chain(state.tenants.iter().map(|tenant| state.issuer_for(*tenant))).collect()
}

/// The `iss` of Graph access tokens (v1.0 tokens) for a tenant.
pub(crate) fn graph_token_issuer(tenant: Uuid) -> String {
    format!("https://sts.windows.net/{tenant}/")
}

fn id_token(state: &EmulatorState, request: &Issue<'_>) -> anyhow::Result<String> {
    let now = state.clock.wall();
    let user = &request.user;
    let mut claims = json!({
        "aud": request.client_id,
        "iss": state.issuer_for(user.tenant_id),
        "iat": now,
        "nbf": now,
        "exp": now + 3600,
        "rh": format!("0.emu.{}", random_id()),
        "sid": request.sign_in.sid,
        "sub": pairwise_subject(user.oid, request.client_id),
        "tid": user.tenant_id,
        "uti": random_id(),
        "ver": "2.0",
        "aio": random_id(),
        "auth_time": state.clock.to_wall(request.sign_in.auth_time),
    });
    if let Some(nonce) = request.nonce {
        claims["nonce"] = json!(nonce);
    }
    // The `profile` scope brings the user's name, sign-in name and object id (Entra's v2.0 ID
    // token with `openid` alone has little more than `sub`).
    if request.scopes.iter().any(|scope| scope.eq_ignore_ascii_case("profile")) {
        claims["name"] = json!(user.user.display_name);
        claims["oid"] = json!(user.oid);
        claims["preferred_username"] = json!(user.user.user_principal_name);
    }
    if let (Some(client), Some(object)) = (state.client(request.client_id), claims.as_object_mut()) {
        let memberships = state.memberships();
        object.extend(directory::authorization_claims(
            &memberships,
            &client,
            user,
            user.tenant_id,
            state.group_overage_limit,
        ));
    }
    let wants_email = request.scopes.iter().any(|s| s == "email");
    if let (true, Some(mail)) = (wants_email, &user.user.mail) {
        claims["email"] = json!(mail);
    }
    let keys = state.keys();
    let Some(bad) = state.faults.take_bad_id_token() else {
        return sign_rs256(keys.active(), &claims);
    };
    match bad {
        BadIdToken::WrongNonce => claims["nonce"] = json!(format!("forged-{}", random_id())),
        BadIdToken::WrongAudience => claims["aud"] = json!(Uuid::new_v4()),
        BadIdToken::WrongIssuer => {
            claims["iss"] = json!(format!("https://login.evil.example/{}/v2.0", user.tenant_id));
        }
        BadIdToken::WrongTenant => {
            let other = Uuid::new_v4();
            claims["tid"] = json!(other);
            claims["iss"] = json!(state.issuer_for(other));
        }
        BadIdToken::Expired => {
            claims["iat"] = json!(now - 7200);
            claims["nbf"] = json!(now - 7200);
            claims["exp"] = json!(now - 3600);
        }
        BadIdToken::UnknownKid => return sign_rs256(&SigningKey::generate()?, &claims),
        BadIdToken::AlgNone => {
            let header = URL_SAFE_NO_PAD.encode(json!({"typ": "JWT", "alg": "none"}).to_string());
            let payload = URL_SAFE_NO_PAD.encode(claims.to_string());
            return Ok(format!("{header}.{payload}."));
        }
        BadIdToken::Hs256WithPublicKey => {
            let mut header = Header::new(Algorithm::HS256);
            header.kid = Some(keys.active().kid.clone());
            let key = EncodingKey::from_secret(keys.active().public_pem.as_bytes())?;
            return Ok(jsonwebtoken::encode(&header, &claims, &key)?);
        }
    }
    sign_rs256(keys.active(), &claims)
}

/// Signs `claims` with the tenant's active key (RS256, with its `kid`).
pub(crate) fn sign(state: &EmulatorState, claims: &Value) -> anyhow::Result<String> {
    sign_rs256(state.keys().active(), claims)
}

fn sign_rs256(key: &SigningKey, claims: &Value) -> anyhow::Result<String> {
    let header = URL_SAFE_NO_PAD.encode(json!({ "typ": "JWT", "alg": "RS256", "kid": key.kid }).to_string());
    let signing_input = format!("{header}.{}", URL_SAFE_NO_PAD.encode(claims.to_string()));
    let signature = key.sign_rs256(signing_input.as_bytes())?;
    Ok(format!("{signing_input}.{signature}"))
}

/// Entra's `sub` is pairwise: stable per user and application, different across applications.
pub(crate) fn pairwise_subject(oid: Uuid, audience: &str) -> String {
    let digest = Sha256::digest(format!("{oid}:{audience}").as_bytes());
    URL_SAFE_NO_PAD.encode(&digest[..32])
}

fn random_id() -> String {
    URL_SAFE_NO_PAD.encode(rand::random::<[u8; 16]>())
}

/// The Graph scopes an access token grants (`scp`), split.
pub(crate) fn granted_graph_scopes(scp: &str) -> Vec<String> {
    let all: Vec<String> = scp.split_whitespace().map(str::to_owned).collect();
    scopes::graph_scopes(&all)
}
