//! Other applications calling the app behind as an API with access tokens for it
//! (`Authorization: Bearer`), as App Service authentication lets them: a desktop app registered
//! in the emulator gets a token for `api://<the app>/access_as_user` through the authorization
//! code flow with PKCE, and calls through the proxy.

use base64::Engine;
use reqwest::StatusCode;
use serde_json::Value;

use crate::helpers::*;
use crate::proxy::closes_within;
use crate::proxy::echoes;
use crate::proxy::proxy_with_options;
use crate::proxy::websocket_request;
use crate::upstream::{self, Upstream};

/// The application allowed to call (`PROXY_BEARER_CLIENTS`).
const CALLER: &str = "c0ffee00-0000-4000-8000-00000000ca11";
/// A registered application that is not.
const OTHER_CALLER: &str = "c0ffee00-0000-4000-8000-0000000000e1";
/// A daemon (a confidential client with a secret, no user) allowed to call, granted the app's
/// `Orders.Read.All` application permission.
const DAEMON: &str = "c0ffee00-0000-4000-8000-0000000da307";
const DAEMON_SECRET: &str = "daemon-secret";

async fn proxy_accepting(
    upstream: &Upstream,
    change: impl FnOnce(&mut entra_webapp::config::Settings) + Send + 'static,
) -> TestApp {
    proxy_accepting_with(upstream, change, Options::default()).await
}

async fn proxy_accepting_with(
    upstream: &Upstream,
    change: impl FnOnce(&mut entra_webapp::config::Settings) + Send + 'static,
    options: Options,
) -> TestApp {
    let accepting = move |settings: &mut entra_webapp::config::Settings| {
        settings.proxy_bearer_clients = Some(CALLER.into());
        settings.proxy_anonymous_paths = Some("/public/*".into());
        change(settings);
    };
    let daemon = entra_emulator::ClientRegistration {
        client_id: DAEMON.to_owned(),
        client_secret: Some(DAEMON_SECRET.to_owned()),
        redirect_uris: Vec::new(),
        display_name: "nightly export".to_owned(),
        application_permissions: vec![format!("api://{}/Orders.Read.All", entra_emulator::DEFAULT_CLIENT_ID)],
        ..entra_emulator::ClientRegistration::default()
    };
    let other_clients = vec![calling_app(CALLER), calling_app(OTHER_CALLER), daemon];
    let options = Options { other_clients, ..options };
    proxy_with_options(upstream, accepting, options).await
}

/// A token `caller` got for the app's API with Adele signed in to it.
async fn token_for_the_app(app: &TestApp, caller: &str) -> String {
    let client_id = app.emulator.clients()[0].client_id.clone();
    access_token_of(app, caller, ADELE, ADELE_PASSWORD, &format!("api://{client_id}/access_as_user")).await
}

async fn call(app: &TestApp, method: reqwest::Method, path: &str, token: &str) -> reqwest::Response {
    browser().request(method, app.url(path)).bearer_auth(token).send().await.unwrap()
}

/// The browser's CORS preflight before a page of `https://spa.example` posts to `/api/orders` with
/// a token.
async fn preflight(app: &TestApp) -> reqwest::Response {
    browser()
        .request(reqwest::Method::OPTIONS, app.url("/api/orders"))
        .header("origin", "https://spa.example")
        .header("access-control-request-method", "POST")
        .header("access-control-request-headers", "authorization, content-type")
        .send()
        .await
        .unwrap()
}

fn challenge(response: &reqwest::Response) -> String {
    response.headers()["www-authenticate"].to_str().unwrap().to_owned()
}

#[tokio::test]
async fn an_application_with_a_token_for_the_app_reaches_it_as_the_user_it_acts_for() {
    let upstream = upstream::start().await;
    let app = proxy_accepting(&upstream, |_| {}).await;
    let token = token_for_the_app(&app, CALLER).await;
    let response = call(&app, reqwest::Method::GET, "/api/orders", &token).await;
    assert_eq!(response.status(), StatusCode::OK);
    assert!(response.headers().get("set-cookie").is_none(), "no session for a token");
    assert_eq!(response.headers()["cache-control"], "private");
    let echoed: Value = response.json().await.unwrap();
    let header = |name: &str| echoed["headers"][name][0].as_str().map(str::to_owned);
    let oid = app.emulator.user_object_id(ADELE).unwrap().to_string();
    assert_eq!(header("x-ms-client-principal-id"), Some(oid.clone()));
    assert_eq!(header("x-ms-client-principal-name").as_deref(), Some(ADELE));
    assert_eq!(header("x-ms-client-principal-idp").as_deref(), Some("aad"));
    // The app can check the token itself too: it goes on as sent.
    assert_eq!(header("authorization"), Some(format!("Bearer {token}")));
    let principal = header("x-ms-client-principal").unwrap();
    let principal: Value =
        serde_json::from_slice(&base64::engine::general_purpose::STANDARD.decode(principal).unwrap()).unwrap();
    assert!(principal["claims"].as_array().unwrap().iter().any(|claim| claim["typ"] == "oid" && claim["val"] == oid));

    // A single-page app on another site calls with its token (a CORS request): the browser's
    // preflight, which never carries a token or cookie, reaches the app (as nobody) for its CORS
    // answer; then no cookie is used, so the cross-origin check that keeps other pages from acting
    // with the session does not apply.
    let preflight = preflight(&app).await;
    assert_eq!(preflight.status(), StatusCode::OK);
    let preflight: Value = preflight.json().await.unwrap();
    assert_eq!(preflight["method"], "OPTIONS");
    assert!(preflight["headers"].get("x-ms-client-principal").is_none());
    let from_a_spa = browser()
        .post(app.url("/api/orders"))
        .bearer_auth(&token)
        .header("origin", "https://spa.example")
        .header("sec-fetch-site", "cross-site")
        .body("{}")
        .send()
        .await
        .unwrap();
    assert_eq!(from_a_spa.status(), StatusCode::OK);
}

#[tokio::test]
async fn tokens_not_for_the_app_or_not_from_an_allowed_application_are_refused() {
    let upstream = upstream::start().await;
    let app = proxy_accepting(&upstream, |_| {}).await;
    let not_allowed = token_for_the_app(&app, OTHER_CALLER).await;
    let for_graph = access_token_of(&app, CALLER, ADELE, ADELE_PASSWORD, "User.Read").await;
    let allowed = token_for_the_app(&app, CALLER).await;
    let (header, payload, signature) = {
        let parts: Vec<&str> = allowed.split('.').collect();
        (parts[0].to_owned(), parts[1].to_owned(), parts[2].to_owned())
    };
    let engine = base64::engine::general_purpose::URL_SAFE_NO_PAD;
    let mut claims: Value = serde_json::from_slice(&engine.decode(&payload).unwrap()).unwrap();
    claims["oid"] = Value::String(uuid::Uuid::new_v4().to_string());
    let forged = format!("{header}.{}.{signature}", engine.encode(claims.to_string()));
    let unsigned = format!("{}.{payload}.", engine.encode(r#"{"alg":"none","typ":"JWT"}"#));
    for (token, says) in [
        (not_allowed.as_str(), "the calling application may not call this app"),
        (for_graph.as_str(), "the access token is not valid for this app"),
        (forged.as_str(), "the access token is not valid for this app"),
        (unsigned.as_str(), "the access token is not valid for this app"),
        ("not-a-token", "the access token is not valid for this app"),
    ] {
        let response = call(&app, reqwest::Method::GET, "/api/orders", token).await;
        assert_eq!(response.status(), StatusCode::UNAUTHORIZED, "{says}");
        assert_eq!(challenge(&response), format!("Bearer error=\"invalid_token\", error_description=\"{says}\""));
    }
    // A token that fails is never made up for by a session the browser also sent.
    app.sign_in_adele().await;
    let with_cookie = app.browser.get(app.url("/api/orders")).bearer_auth(&forged).send().await.unwrap();
    assert_eq!(with_cookie.status(), StatusCode::UNAUTHORIZED);
    // Where anyone may come, a token that fails only means no identity.
    let public = call(&app, reqwest::Method::GET, "/public/prices", &forged).await;
    assert_eq!(public.status(), StatusCode::OK);
    let echoed: Value = public.json().await.unwrap();
    assert!(echoed["headers"].get("x-ms-client-principal").is_none(), "{echoed}");
}

/// An API whose registration asks for v2.0 access tokens (`requestedAccessTokenVersion: 2`, as
/// many do) gets them in that format: another issuer, the client id as audience, `azp`.
#[tokio::test]
async fn a_v2_token_for_the_app_is_accepted_as_well() {
    let upstream = upstream::start().await;
    let v2 = Options {
        emulator_setup: Some(Box::new(|_, client| {
            client.requested_access_token_version = entra_emulator::AccessTokenVersion::V2;
        })),
        ..Options::default()
    };
    let app = proxy_accepting_with(&upstream, |_| {}, v2).await;
    let token = token_for_the_app(&app, CALLER).await;
    let engine = base64::engine::general_purpose::URL_SAFE_NO_PAD;
    let claims: Value = serde_json::from_slice(&engine.decode(token.split('.').nth(1).unwrap()).unwrap()).unwrap();
    let client_id = app.emulator.clients()[0].client_id.clone();
    assert_eq!((claims["ver"].as_str(), claims["azp"].as_str()), (Some("2.0"), Some(CALLER)));
    assert_eq!(claims["aud"], client_id);
    assert_eq!(claims["iss"], app.emulator.issuer().replace("{tenantid}", &app.emulator.tenant_id().to_string()));
    let response = call(&app, reqwest::Method::GET, "/api/orders", &token).await;
    assert_eq!(response.status(), StatusCode::OK);
    let echoed: Value = response.json().await.unwrap();
    assert_eq!(echoed["headers"]["x-ms-client-principal-name"][0], ADELE);
    // And the other application's v2.0 token is refused by its `azp`.
    let other = token_for_the_app(&app, OTHER_CALLER).await;
    assert_eq!(call(&app, reqwest::Method::GET, "/api/orders", &other).await.status(), StatusCode::UNAUTHORIZED);
}

/// Forward auth answers the same about a request with a token (a front end passes its
/// `Authorization` on).
#[tokio::test]
async fn forward_auth_judges_a_token_as_the_proxy_does() {
    let upstream = upstream::start().await;
    let app = proxy_accepting(&upstream, |_| {}).await;
    let verify = |token: String| browser().get(app.url("/.auth/verify")).bearer_auth(token).send();
    let allowed = verify(token_for_the_app(&app, CALLER).await).await.unwrap();
    assert_eq!(allowed.status(), StatusCode::OK);
    assert_eq!(allowed.headers()["x-ms-client-principal-name"], ADELE);
    let refused = verify(token_for_the_app(&app, OTHER_CALLER).await).await.unwrap();
    assert_eq!(refused.status(), StatusCode::UNAUTHORIZED);
    assert!(challenge(&refused).contains("invalid_token"));
}

/// The daemon's own token for the app (client credentials, as MSAL's `acquire_token_for_client`).
async fn daemon_token(app: &TestApp) -> String {
    let scope = format!("api://{}/.default", entra_emulator::DEFAULT_CLIENT_ID);
    let form = [
        ("client_id", DAEMON),
        ("client_secret", DAEMON_SECRET),
        ("grant_type", "client_credentials"),
        ("scope", &scope),
    ];
    let response =
        browser().post(format!("{}/oauth2/v2.0/token", app.emulator.authority())).form(&form).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    response.json::<Value>().await.unwrap()["access_token"].as_str().unwrap().to_owned()
}

/// An application calling for itself (no user): it reaches the app as itself, its application
/// permissions as its roles, which the access policy reads as a user's.
#[tokio::test]
async fn a_daemon_with_a_token_of_its_own_reaches_the_app_as_itself() {
    let upstream = upstream::start().await;
    let app = proxy_accepting(&upstream, |settings| {
        settings.proxy_bearer_clients = Some(format!("{CALLER},{DAEMON}"));
        settings.allowed_roles = Some("Orders.Read.All".into());
    })
    .await;
    let token = daemon_token(&app).await;
    let response = call(&app, reqwest::Method::GET, "/api/orders", &token).await;
    assert_eq!(response.status(), StatusCode::OK);
    let echoed: Value = response.json().await.unwrap();
    let header = |name: &str| echoed["headers"][name][0].as_str().map(str::to_owned);
    let service_principal = app.emulator.service_principal_id(DAEMON).to_string();
    assert_eq!(header("x-ms-client-principal-id"), Some(service_principal));
    assert_eq!(header("x-ms-client-principal-name").as_deref(), Some(DAEMON), "named by its client id");
    let principal = header("x-ms-client-principal").unwrap();
    let principal: Value =
        serde_json::from_slice(&base64::engine::general_purpose::STANDARD.decode(principal).unwrap()).unwrap();
    let roles: Vec<&Value> = principal["claims"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|claim| claim["typ"] == principal["role_typ"])
        .map(|claim| &claim["val"])
        .collect();
    assert_eq!(roles, [&Value::from("Orders.Read.All")]);
    let me: Value = browser().get(app.url("/.auth/me")).bearer_auth(&token).send().await.unwrap().json().await.unwrap();
    assert_eq!(me[0]["user_id"], DAEMON, "/.auth/me names it too");

    // Not allowed to call: refused like any other application, whatever its permissions.
    let refusing = proxy_accepting(&upstream, |settings| settings.allowed_roles = Some("Orders.Read.All".into())).await;
    let response = call(&refusing, reqwest::Method::GET, "/api/orders", &daemon_token(&refusing).await).await;
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    assert!(challenge(&response).contains("may not call this app"));
}

/// `/.auth/me` answers a caller with a token for its token, as App Service authentication does
/// (an app behind Easy Auth, or its SPA, asks it who is calling).
#[tokio::test]
async fn auth_me_answers_for_the_token_a_caller_sends() {
    let upstream = upstream::start().await;
    let app = proxy_accepting(&upstream, |_| {}).await;
    let me = |token: String| browser().get(app.url("/.auth/me")).bearer_auth(token).send();
    let token = token_for_the_app(&app, CALLER).await;
    let answer = me(token.clone()).await.unwrap();
    assert_eq!(answer.status(), StatusCode::OK);
    assert_eq!(answer.headers()["cache-control"], "no-store");
    let entries: Value = answer.json().await.unwrap();
    let entry = &entries[0];
    assert_eq!(entry["provider_name"], "aad");
    assert_eq!(entry["user_id"], ADELE);
    let payload = token.split('.').nth(1).unwrap();
    let claims: Value =
        serde_json::from_slice(&base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(payload).unwrap()).unwrap();
    assert_eq!(entry["expires_on"], claims["exp"], "the token's end");
    let oid = app.emulator.user_object_id(ADELE).unwrap().to_string();
    let claim = |typ: &str| entry["user_claims"].as_array().unwrap().iter().find(|c| c["typ"] == typ).cloned();
    assert_eq!(claim("oid").unwrap()["val"], oid);
    assert!(!entries.to_string().contains(&token), "never the token itself");

    let refused = me(token_for_the_app(&app, OTHER_CALLER).await).await.unwrap();
    assert_eq!(refused.status(), StatusCode::UNAUTHORIZED);
    assert!(challenge(&refused).contains("invalid_token"));
    // Without PROXY_BEARER_CLIENTS a token means nothing, here as anywhere.
    let not_accepting = proxy_accepting(&upstream, |settings| settings.proxy_bearer_clients = None).await;
    let ignored = browser().get(not_accepting.url("/.auth/me")).bearer_auth(token).send().await.unwrap();
    assert_eq!(ignored.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(ignored.json::<Value>().await.unwrap()["error"], "not signed in");
}

#[tokio::test]
async fn a_callers_token_brings_the_users_roles_and_groups_to_the_access_policy() {
    let upstream = upstream::start().await;
    let sales = entra_emulator::SALES_GROUP_ID.to_string();
    let app = proxy_accepting(&upstream, move |settings| {
        settings.allowed_groups = Some(sales);
        settings.allowed_roles = Some("Reader".into());
    })
    .await;
    let token = token_for_the_app(&app, CALLER).await;
    let response = call(&app, reqwest::Method::GET, "/api/orders", &token).await;
    assert_eq!(response.status(), StatusCode::OK, "in Sales, a Reader: let in");
    let echoed: Value = response.json().await.unwrap();
    let principal = echoed["headers"]["x-ms-client-principal"][0].as_str().unwrap();
    let principal: Value =
        serde_json::from_slice(&base64::engine::general_purpose::STANDARD.decode(principal).unwrap()).unwrap();
    let values = |typ: &Value| -> Vec<Value> {
        principal["claims"].as_array().unwrap().iter().filter(|c| &c["typ"] == typ).map(|c| c["val"].clone()).collect()
    };
    assert_eq!(values(&principal["role_typ"]), [Value::from("Reader")]);
    assert_eq!(values(&Value::from("groups")), [Value::from(entra_emulator::SALES_GROUP_ID.to_string())]);
}

/// Adele in five more groups than tokens carry (the limit lowered to three): her tokens have the
/// groups overage; `granted`: the app has the `GroupMember.Read.All` application permission.
fn overage_for_tokens(granted: bool) -> EmulatorSetup {
    Box::new(move |config, app| {
        adele_in_many_groups(5)(config, app);
        config.group_overage_limit = 3;
        if granted {
            app.application_permissions = vec!["https://graph.microsoft.com/GroupMember.Read.All".into()];
        }
    })
}

/// A caller's token without groups (more than it can carry): the proxy asks Graph with the app's
/// own token, as a web API does, so the access policy and the app behind see the groups.
#[tokio::test]
async fn a_callers_groups_overage_is_resolved_with_the_apps_own_graph_token() {
    let upstream = upstream::start().await;
    let wanted = many_groups_id(4).to_string();
    let settings = {
        let wanted = wanted.clone();
        move |settings: &mut entra_webapp::config::Settings| {
            settings.allowed_groups = Some(wanted.clone());
            settings.proxy_principal_groups = Some(wanted);
        }
    };
    let options = Options { emulator_setup: Some(overage_for_tokens(true)), ..Options::default() };
    let app = proxy_accepting_with(&upstream, settings.clone(), options).await;
    let token = token_for_the_app(&app, CALLER).await;
    let payload = token.split('.').nth(1).unwrap();
    let claims: Value =
        serde_json::from_slice(&base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(payload).unwrap()).unwrap();
    assert!(claims.get("groups").is_none() && claims["_claim_names"]["groups"].is_string(), "overage: {claims}");

    let before = app.emulator.graph_requests_received();
    let response = call(&app, reqwest::Method::GET, "/api/orders", &token).await;
    assert_eq!(response.status(), StatusCode::OK, "in the required group, found through Graph");
    let echoed: Value = response.json().await.unwrap();
    let principal = echoed["headers"]["x-ms-client-principal"][0].as_str().unwrap();
    let principal: Value =
        serde_json::from_slice(&base64::engine::general_purpose::STANDARD.decode(principal).unwrap()).unwrap();
    let groups: Vec<&Value> =
        principal["claims"].as_array().unwrap().iter().filter(|c| c["typ"] == "groups").map(|c| &c["val"]).collect();
    assert_eq!(groups, [&Value::from(wanted.clone())]);
    assert_eq!(app.emulator.graph_requests_received(), before + 1, "one Graph request");
    // Kept for a while: the next request asks Graph nothing.
    assert_eq!(call(&app, reqwest::Method::GET, "/api/orders", &token).await.status(), StatusCode::OK);
    assert_eq!(app.emulator.graph_requests_received(), before + 1);

    // Without the permission Graph refuses: the group requirement cannot be decided (503, not a
    // refusal); without a group requirement the caller goes through, without groups.
    let options = Options { emulator_setup: Some(overage_for_tokens(false)), ..Options::default() };
    let ungranted = proxy_accepting_with(&upstream, settings, options).await;
    let token = token_for_the_app(&ungranted, CALLER).await;
    let response = call(&ungranted, reqwest::Method::GET, "/api/orders", &token).await;
    assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
    let options = Options { emulator_setup: Some(overage_for_tokens(false)), ..Options::default() };
    let no_group_needed = proxy_accepting_with(&upstream, |_| {}, options).await;
    let token = token_for_the_app(&no_group_needed, CALLER).await;
    assert_eq!(call(&no_group_needed, reqwest::Method::GET, "/api/orders", &token).await.status(), StatusCode::OK);
    // Likewise for a path rule's group: undecided on its paths (503), no matter elsewhere.
    let options = Options { emulator_setup: Some(overage_for_tokens(false)), ..Options::default() };
    let path_rule = move |settings: &mut entra_webapp::config::Settings| {
        settings.proxy_path_groups = Some(format!("/api/orders/*={wanted}"));
    };
    let by_path = proxy_accepting_with(&upstream, path_rule, options).await;
    let token = token_for_the_app(&by_path, CALLER).await;
    let guarded = call(&by_path, reqwest::Method::GET, "/api/orders/7", &token).await;
    assert_eq!(guarded.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(call(&by_path, reqwest::Method::GET, "/api/catalog", &token).await.status(), StatusCode::OK);
}

/// With `PROXY_ACCESS_TOKEN_SCOPES`, the app behind gets a token for them for a caller with a
/// token too: on behalf of the caller's user, as it gets one for a signed-in user.
#[tokio::test]
async fn a_callers_user_gets_the_app_behind_a_token_on_their_behalf() {
    let upstream = upstream::start().await;
    let passing = |settings: &mut entra_webapp::config::Settings| {
        settings.proxy_pass_tokens = "true".into();
        settings.proxy_access_token_scopes = Some("User.Read".into());
    };
    let consented: EmulatorSetup = Box::new(|config, _| config.admin_consent = true);
    let app =
        proxy_accepting_with(&upstream, passing, Options { emulator_setup: Some(consented), ..Options::default() })
            .await;
    let token = token_for_the_app(&app, CALLER).await;
    let passed = |echoed: &Value| echoed["headers"]["x-ms-token-aad-access-token"][0].as_str().map(str::to_owned);
    let response = call(&app, reqwest::Method::GET, "/api/orders", &token).await;
    assert_eq!(response.status(), StatusCode::OK);
    let echoed: Value = response.json().await.unwrap();
    let graph_token = passed(&echoed).expect("a token for the app behind");
    let payload = graph_token.split('.').nth(1).unwrap();
    let claims: Value =
        serde_json::from_slice(&base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(payload).unwrap()).unwrap();
    assert_eq!(claims["aud"], "https://graph.microsoft.com");
    assert_eq!(claims["oid"], app.emulator.user_object_id(ADELE).unwrap().to_string(), "as the caller's user");
    let expires_on = echoed["headers"]["x-ms-token-aad-expires-on"][0].as_str().unwrap();
    assert_eq!(expires_on.parse::<u64>().unwrap(), claims["exp"].as_u64().unwrap());
    assert!(echoed["headers"].get("x-ms-token-aad-id-token").is_none(), "no sign-in here, no ID token");
    // Kept: the next call asks Entra nothing.
    let before = app.emulator.token_requests_received();
    let again: Value = call(&app, reqwest::Method::GET, "/api/orders", &token).await.json().await.unwrap();
    assert_eq!(passed(&again), Some(graph_token));
    assert_eq!(app.emulator.token_requests_received(), before);

    // The user never consented to the app having User.Read: 403, the calling client must ask.
    let unconsented = proxy_accepting(&upstream, passing).await;
    let token = token_for_the_app(&unconsented, CALLER).await;
    let response = call(&unconsented, reqwest::Method::GET, "/api/orders", &token).await;
    assert_eq!(response.status(), StatusCode::FORBIDDEN);
    assert!(challenge(&response).contains("insufficient_scope"), "{}", challenge(&response));
    // Where anyone may come, it only means no token for the app behind.
    let response = call(&unconsented, reqwest::Method::GET, "/public/page", &token).await;
    assert_eq!(response.status(), StatusCode::OK);
    let echoed: Value = response.json().await.unwrap();
    assert!(passed(&echoed).is_none());
    assert_eq!(echoed["headers"]["x-ms-client-principal-name"][0], ADELE, "the caller still");
}

#[tokio::test]
async fn the_access_policy_applies_to_callers_with_tokens() {
    let upstream = upstream::start().await;
    let app = proxy_accepting(&upstream, |settings| settings.allowed_roles = Some("Admin".into())).await;
    let token = token_for_the_app(&app, CALLER).await;
    let response = call(&app, reqwest::Method::GET, "/api/orders", &token).await;
    assert_eq!(response.status(), StatusCode::FORBIDDEN);
    assert!(response.text().await.unwrap().contains("role"));
}

#[tokio::test]
async fn without_bearer_clients_a_token_is_no_way_in() {
    let upstream = upstream::start().await;
    let app = proxy_accepting(&upstream, |settings| settings.proxy_bearer_clients = None).await;
    let token = token_for_the_app(&app, CALLER).await;
    let response = call(&app, reqwest::Method::GET, "/api/orders", &token).await;
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    assert!(challenge(&response).contains("authorization_uri="), "the sign-in challenge: {}", challenge(&response));
    // Nor does a preflight reach the app then: no page of another origin is expected to call.
    assert_eq!(preflight(&app).await.status(), StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn only_a_real_cors_preflight_reaches_the_app_without_credentials() {
    let upstream = upstream::start().await;
    let app = proxy_accepting(&upstream, |_| {}).await;
    assert_eq!(preflight(&app).await.status(), StatusCode::OK, "a preflight does");
    // A preflight is an OPTIONS with both an Origin and the method it asks about; anything short of
    // that needs credentials like every other request.
    let origin = ("origin", "https://spa.example");
    let asking = ("access-control-request-method", "POST");
    let (unauthorized, forbidden) = (StatusCode::UNAUTHORIZED, StatusCode::FORBIDDEN);
    for (method, headers, status) in [
        (reqwest::Method::OPTIONS, vec![asking], unauthorized),
        (reqwest::Method::OPTIONS, vec![origin], unauthorized),
        (reqwest::Method::OPTIONS, vec![], unauthorized),
        (reqwest::Method::GET, vec![origin, asking], unauthorized),
        // Another origin's POST, refused before its session is even looked for.
        (reqwest::Method::POST, vec![origin, asking], forbidden),
    ] {
        let mut request = browser().request(method.clone(), app.url("/api/orders"));
        for (name, value) in &headers {
            request = request.header(*name, *value);
        }
        let response = request.send().await.unwrap();
        assert_eq!(response.status(), status, "{method} with {headers:?}");
    }
}

/// A WebSocket opened with a token speaks as its caller only while the token is valid.
#[tokio::test]
async fn a_websocket_opened_with_a_token_closes_when_the_token_expires() {
    let upstream = upstream::start().await;
    let lifetime = std::time::Duration::from_secs(5);
    let options = Options { access_token_lifetime: Some(lifetime), ..Options::default() };
    let app = proxy_accepting_with(&upstream, |_| {}, options).await;
    let token = token_for_the_app(&app, CALLER).await;
    let authorization = format!("Bearer {token}");
    let request = websocket_request(&app, "/ws", &[("authorization", &authorization)]);
    let mut socket = tokio_tungstenite::connect_async(request).await.expect("upgraded with the token").0;
    assert!(echoes(&mut socket, "while the token is valid").await);
    assert!(closes_within(&mut socket, lifetime + std::time::Duration::from_secs(5)).await);
}

/// Where anyone may come, a token that fails means no identity, and nothing more: a WebSocket
/// opened there with one works, and stays open.
#[tokio::test]
async fn a_websocket_where_anyone_may_come_stays_open_whatever_token_it_carried() {
    let upstream = upstream::start().await;
    let app = proxy_accepting(&upstream, |settings| settings.proxy_anonymous_paths = Some("/ws".into())).await;
    let request = websocket_request(&app, "/ws", &[("authorization", "Bearer not-a-token")]);
    let mut socket = tokio_tungstenite::connect_async(request).await.expect("upgraded as nobody").0;
    assert!(echoes(&mut socket, "anyone").await);
    assert!(!closes_within(&mut socket, std::time::Duration::from_secs(2)).await, "still open");
    assert!(echoes(&mut socket, "still anyone").await);
}
