//! Where the emulator behaves as Entra and Graph do in details a client can trip over: the
//! `scope` a token response echoes, request ids, Graph's error body for unknown paths, the
//! discovery document of multi-tenant authorities, `suberror`.

use reqwest::StatusCode;
use serde_json::Value;

use crate::helpers::*;

#[tokio::test]
async fn the_token_response_scope_lists_what_the_access_token_grants_never_offline_access() {
    let emulator = emulator().await;
    let (code, verifier) = code_for_adele(&browser(), &emulator).await;
    let (status, tokens) = redeem(&emulator, &code, &verifier).await;
    assert_eq!(status, StatusCode::OK);
    let scope = tokens["scope"].as_str().unwrap();
    assert!(scope.split(' ').any(|s| s == "User.Read"), "{scope}");
    assert!(!scope.split(' ').any(|s| s == "offline_access"), "{scope}");
    assert!(tokens["refresh_token"].is_string(), "offline_access still gives a refresh token");
}

#[tokio::test]
async fn responses_carry_request_ids_and_echo_the_clients() {
    let emulator = emulator().await;
    let token = http()
        .post(token_url(&emulator))
        .header("client-request-id", "4f1b3c2a-0000-4000-8000-000000000001")
        .form(&[("grant_type", "client_credentials")])
        .send()
        .await
        .unwrap();
    assert!(token.headers().contains_key("x-ms-request-id"));
    assert_eq!(token.headers()["client-request-id"], "4f1b3c2a-0000-4000-8000-000000000001");
    let graph = http().get(format!("{}/v1.0/me", emulator.graph_endpoint())).send().await.unwrap();
    assert!(graph.headers().contains_key("request-id"));
    assert!(graph.headers().contains_key("client-request-id"));
}

#[tokio::test]
async fn an_unknown_graph_path_gets_graphs_error_body() {
    let emulator = emulator().await;
    let response = http().get(format!("{}/v1.0/mee", emulator.graph_endpoint())).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["error"]["code"], "BadRequest");
    assert_eq!(body["error"]["message"], "Resource not found for the segment 'mee'.");
    assert!(body["error"]["innerError"]["request-id"].is_string());
}

#[tokio::test]
async fn multi_tenant_discovery_has_no_region_and_no_device_code_endpoint() {
    let emulator = emulator().await;
    let get = |url: String| async move { http().get(url).send().await.unwrap().json::<Value>().await.unwrap() };
    let common = get(format!("{}/common/v2.0/.well-known/openid-configuration", emulator.base_url())).await;
    assert!(common["tenant_region_scope"].is_null());
    assert!(common.get("device_authorization_endpoint").is_none(), "not served, so not advertised");
    let tenant = get(format!("{}/v2.0/.well-known/openid-configuration", emulator.authority())).await;
    assert_eq!(tenant["tenant_region_scope"], "EU");
}

#[tokio::test]
async fn a_permission_the_resource_does_not_have_is_refused_with_aadsts650053() {
    let emulator = emulator().await;
    let request = AuthorizeRequest::new().set("scope", "openid profile User.Reed");
    let response = browser().get(request.url(&emulator)).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::FOUND, "back to the app with the error");
    let back = location(&response);
    assert_eq!(query_param(&back, "error").as_deref(), Some("invalid_client"));
    assert_eq!(query_param(&back, "error_codes").as_deref(), Some("[650053]"));
    assert!(query_param(&back, "error_description").unwrap().contains("'User.Reed' that doesn't exist"));

    let (code, verifier) = code_for_adele(&browser(), &emulator).await;
    let (_, tokens) = redeem(&emulator, &code, &verifier).await;
    let refresh_token = tokens["refresh_token"].as_str().unwrap();
    let api_typo = format!("api://{}/access_as_usr", entra_emulator::DEFAULT_CLIENT_ID);
    for scope in ["Mail.Raed", api_typo.as_str()] {
        let (status, body) = token_request(
            &emulator,
            &[("grant_type", "refresh_token"), ("refresh_token", refresh_token), ("scope", scope)],
        )
        .await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{scope}");
        assert_entra_error(&body, "invalid_client", 650053);
    }
}

#[tokio::test]
async fn plain_pkce_works_as_on_entra() {
    let emulator = emulator().await;
    let verifier = "a-plain-verifier-of-forty-three-characters-or-more";
    let request = AuthorizeRequest::new().set("code_challenge", verifier).set("code_challenge_method", "plain");
    let response = sign_in_as(&browser(), &emulator, &request, ADELE, ADELE_PASSWORD).await;
    let code = query_param(&location(&response), "code").expect("a code");
    let (status, body) = redeem(&emulator, &code, verifier).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let (code, _) = code_for_adele(&browser(), &emulator).await;
    let (status, body) = redeem(&emulator, &code, "not-the-verifier-at-all-but-long-enough-to-pass").await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_entra_error(&body, "invalid_grant", 501481);
}

#[tokio::test]
async fn the_fragment_response_mode_puts_the_code_in_the_fragment() {
    let emulator = emulator().await;
    let request = AuthorizeRequest::new().set("response_mode", "fragment");
    let response = sign_in_as(&browser(), &emulator, &request, ADELE, ADELE_PASSWORD).await;
    let back = location(&response);
    assert!(back.query().is_none(), "{back}");
    let fragment: Vec<(String, String)> =
        url::form_urlencoded::parse(back.fragment().unwrap().as_bytes()).into_owned().collect();
    assert!(fragment.iter().any(|(name, _)| name == "code"), "{back}");
    assert!(fragment.iter().any(|(name, value)| name == "state" && value == "state-123"), "{back}");
}

#[tokio::test]
async fn a_localhost_redirect_uri_matches_on_any_port_and_nothing_else_does() {
    let emulator = emulator().await;
    // Registered: http://localhost:5001/callback.
    let other_port = AuthorizeRequest::new().set("redirect_uri", "http://localhost:7777/callback");
    let response = browser().get(other_port.url(&emulator)).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::OK, "the sign-in page: the port of localhost is ignored");
    for refused in ["http://localhost:7777/other", "https://localhost:5001/callback", "http://evil.test:5001/callback"]
    {
        let request = AuthorizeRequest::new().set("redirect_uri", refused);
        let response = browser().get(request.url(&emulator)).send().await.unwrap();
        assert_eq!(response.status(), StatusCode::BAD_REQUEST, "{refused}");
        assert!(response.text().await.unwrap().contains("AADSTS50011"), "{refused}");
    }
}

#[tokio::test]
async fn the_id_token_names_the_user_only_with_the_profile_scope() {
    let emulator = emulator().await;
    for (scope, named) in
        [("openid offline_access User.Read", false), ("openid profile offline_access User.Read", true)]
    {
        let request = AuthorizeRequest::new().set("scope", scope);
        let response = sign_in_as(&browser(), &emulator, &request, ADELE, ADELE_PASSWORD).await;
        let code = query_param(&location(&response), "code").unwrap();
        let (_, tokens) = redeem(&emulator, &code, &request.verifier).await;
        let claims = claims_of(tokens["id_token"].as_str().unwrap());
        for claim in ["name", "oid", "preferred_username"] {
            assert_eq!(claims.get(claim).is_some(), named, "{claim} with '{scope}': {claims}");
        }
        assert!(claims["sub"].is_string() && claims["tid"].is_string());
    }
}

#[tokio::test]
async fn a_refresh_token_unused_for_90_days_is_dead_with_aadsts700082() {
    let emulator = emulator().await;
    let (code, verifier) = code_for_adele(&browser(), &emulator).await;
    let (_, tokens) = redeem(&emulator, &code, &verifier).await;
    let refresh = |token: String| {
        let emulator = &emulator;
        async move { token_request(emulator, &[("grant_type", "refresh_token"), ("refresh_token", &token)]).await }
    };
    emulator.advance_clock(std::time::Duration::from_secs(89 * 24 * 3600));
    let (status, fresh) = refresh(tokens["refresh_token"].as_str().unwrap().to_owned()).await;
    assert_eq!(status, StatusCode::OK, "89 days: still alive");
    emulator.advance_clock(std::time::Duration::from_secs(91 * 24 * 3600));
    let (status, body) = refresh(fresh["refresh_token"].as_str().unwrap().to_owned()).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_entra_error(&body, "invalid_grant", 700082);
}

#[tokio::test]
async fn silent_sign_in_never_answers_for_another_account_than_the_hint_or_an_older_sign_in_than_max_age() {
    let emulator = emulator().await;
    let browser = browser();
    let _ = code_for_adele(&browser, &emulator).await;
    let silent = |request: AuthorizeRequest| {
        let (browser, emulator) = (&browser, &emulator);
        async move { location(&browser.get(request.url(emulator)).send().await.unwrap()) }
    };
    let same = silent(AuthorizeRequest::new().set("prompt", "none").set("login_hint", ADELE)).await;
    assert!(query_param(&same, "code").is_some(), "the hinted account has the SSO session: {same}");
    let other = silent(AuthorizeRequest::new().set("prompt", "none").set("login_hint", MALLORY)).await;
    assert_eq!(query_param(&other, "error").as_deref(), Some("login_required"), "{other}");
    assert!(query_param(&other, "code").is_none());

    emulator.advance_clock(std::time::Duration::from_secs(120));
    let stale = silent(AuthorizeRequest::new().set("prompt", "none").set("max_age", "60")).await;
    assert_eq!(query_param(&stale, "error").as_deref(), Some("login_required"), "{stale}");
    let recent_enough = silent(AuthorizeRequest::new().set("prompt", "none").set("max_age", "600")).await;
    assert!(query_param(&recent_enough, "code").is_some(), "{recent_enough}");
}

#[tokio::test]
async fn a_code_redeems_only_at_the_authority_it_was_made_at() {
    let emulator = emulator().await;
    let request = AuthorizeRequest::new().at_tenant("organizations");
    let response = sign_in_as(&browser(), &emulator, &request, ADELE, ADELE_PASSWORD).await;
    let code = query_param(&location(&response), "code").unwrap();
    let form = [
        ("grant_type", "authorization_code"),
        ("code", code.as_str()),
        ("redirect_uri", REDIRECT_URI),
        ("code_verifier", request.verifier.as_str()),
    ];
    let (status, body) = token_request(&emulator, &form).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "made at organizations, redeemed at the tenant");
    assert_entra_error(&body, "invalid_grant", 700005);
    let (status, body) = token_request_at(&request.authority(&emulator), &form).await;
    assert_eq!(status, StatusCode::OK, "{body}");
}

#[tokio::test]
async fn a_single_tenant_registration_cannot_use_common() {
    let emulator = emulator_with(|config| {
        config.clients[0].sign_in_audience = entra_emulator::SignInAudience::AzureADMyOrg;
    })
    .await;
    let page = browser().get(AuthorizeRequest::new().at_tenant("common").url(&emulator)).send().await.unwrap();
    assert_eq!(page.status(), StatusCode::BAD_REQUEST);
    assert!(page.text().await.unwrap().contains("AADSTS50194"));
    let own = browser().get(AuthorizeRequest::new().url(&emulator)).send().await.unwrap();
    assert_eq!(own.status(), StatusCode::OK, "its own tenant's authority works");
}

#[tokio::test]
async fn graph_access_tokens_do_not_verify_as_plain_jwts_but_graph_accepts_them() {
    use base64::Engine;
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;
    use jsonwebtoken::{Algorithm, DecodingKey, Validation};
    use sha2::{Digest, Sha256};

    let emulator = emulator().await;
    let (code, verifier) = code_for_adele(&browser(), &emulator).await;
    let (_, body) = redeem(&emulator, &code, &verifier).await;
    let access_token = body["access_token"].as_str().unwrap();
    let header = header_of(access_token);
    let nonce = header["nonce"].as_str().expect("Graph tokens carry a nonce in their header").to_owned();
    assert_eq!(header["x5t"], header["kid"]);

    let jwks: Value =
        http().get(format!("{}/discovery/v2.0/keys", emulator.authority())).send().await.unwrap().json().await.unwrap();
    let jwk: jsonwebtoken::jwk::Jwk = serde_json::from_value(jwks["keys"][0].clone()).unwrap();
    let key = DecodingKey::from_jwk(&jwk).unwrap();
    let mut validation = Validation::new(Algorithm::RS256);
    validation.set_audience(&["https://graph.microsoft.com", "00000003-0000-0000-c000-000000000000"]);
    validation.validate_exp = false;
    let verified = jsonwebtoken::decode::<Value>(access_token, &key, &validation);
    assert!(
        matches!(verified.as_ref().map_err(|err| err.kind()), Err(jsonwebtoken::errors::ErrorKind::InvalidSignature)),
        "a client validating a Graph token fails, as against Entra: {verified:?}"
    );

    // What only Graph does: the signature covers the header with the nonce's SHA-256.
    let (encoded_header, rest) = access_token.split_once('.').unwrap();
    let header_json = String::from_utf8(URL_SAFE_NO_PAD.decode(encoded_header).unwrap()).unwrap();
    let hashed = URL_SAFE_NO_PAD.encode(Sha256::digest(nonce.as_bytes()));
    let signed_form = format!("{}.{rest}", URL_SAFE_NO_PAD.encode(header_json.replace(&nonce, &hashed)));
    let claims =
        jsonwebtoken::decode::<Value>(&signed_form, &key, &validation).expect("the signed form verifies").claims;
    assert_eq!(claims["upn"], ADELE);

    let me = |token: String| http().get(format!("{}/v1.0/me", emulator.graph_endpoint())).bearer_auth(token).send();
    assert_eq!(me(access_token.to_owned()).await.unwrap().status(), StatusCode::OK, "Graph accepts it");
    let other_nonce = URL_SAFE_NO_PAD.encode([7u8; 32]);
    let tampered = format!("{}.{rest}", URL_SAFE_NO_PAD.encode(header_json.replace(&nonce, &other_nonce)));
    assert_eq!(me(tampered).await.unwrap().status(), StatusCode::UNAUTHORIZED, "not with another nonce");
}

#[tokio::test]
async fn an_authentication_context_challenge_stands_until_the_user_signs_in_again_with_the_claims() {
    let emulator = emulator().await;
    let browser = browser();
    let (code, verifier) = code_for_adele(&browser, &emulator).await;
    let (_, tokens) = redeem(&emulator, &code, &verifier).await;
    let me = |token: String| http().get(format!("{}/v1.0/me", emulator.graph_endpoint())).bearer_auth(token).send();
    emulator.faults().require_auth_context("c1");

    // Graph challenges the token, every time: ignoring the challenge gets a client nowhere.
    let mut challenge = String::new();
    for _ in 0..3 {
        let refused = me(tokens["access_token"].as_str().unwrap().to_owned()).await.unwrap();
        assert_eq!(refused.status(), StatusCode::UNAUTHORIZED);
        challenge = refused.headers()["www-authenticate"].to_str().unwrap().to_owned();
    }
    assert!(challenge.contains("error=\"insufficient_claims\""), "{challenge}");
    let encoded = challenge.split("claims=\"").nth(1).unwrap().trim_end_matches('"');
    let claims =
        String::from_utf8(base64::Engine::decode(&base64::engine::general_purpose::STANDARD, encoded).unwrap())
            .unwrap();
    let demanded: Value = serde_json::from_str(&claims).unwrap();
    assert_eq!(demanded["access_token"]["acrs"]["value"], "c1");

    // A refresh cannot meet it (step-up needs the user)...
    let refresh_token = tokens["refresh_token"].as_str().unwrap();
    let (status, body) = token_request(
        &emulator,
        &[("grant_type", "refresh_token"), ("refresh_token", refresh_token), ("claims", &claims)],
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_entra_error(&body, "invalid_grant", 50076);

    // ...signing in again with the claims does: the SSO session is not enough, the password is asked.
    let request = AuthorizeRequest::new().set("claims", &claims);
    let page = browser.get(request.url(&emulator)).send().await.unwrap();
    assert_eq!(page.status(), StatusCode::OK, "the sign-in page, not a silent redirect");
    let response = sign_in_as(&browser, &emulator, &request, ADELE, ADELE_PASSWORD).await;
    let code = query_param(&location(&response), "code").unwrap();
    let (status, stepped_up) = redeem(&emulator, &code, &request.verifier).await;
    assert_eq!(status, StatusCode::OK, "{stepped_up}");
    let access_token = stepped_up["access_token"].as_str().unwrap();
    assert_eq!(claims_of(access_token)["acrs"], serde_json::json!(["c1"]));
    assert_eq!(me(access_token.to_owned()).await.unwrap().status(), StatusCode::OK);
    // Its refresh token keeps the context.
    let refresh = [("grant_type", "refresh_token"), ("refresh_token", stepped_up["refresh_token"].as_str().unwrap())];
    let (_, refreshed) = token_request(&emulator, &refresh).await;
    assert_eq!(me(refreshed["access_token"].as_str().unwrap().to_owned()).await.unwrap().status(), StatusCode::OK);
}

#[tokio::test]
async fn after_the_clock_is_advanced_old_tokens_are_expired_and_new_ones_carry_wall_clock_times() {
    let emulator = emulator().await;
    let browser = browser();
    let (code, verifier) = code_for_adele(&browser, &emulator).await;
    let (_, before) = redeem(&emulator, &code, &verifier).await;
    let me =
        |token: &str| http().get(format!("{}/v1.0/me", emulator.graph_endpoint())).bearer_auth(token.to_owned()).send();
    emulator.advance_clock(std::time::Duration::from_secs(2 * 3600));
    let old = me(before["access_token"].as_str().unwrap()).await.unwrap();
    assert_eq!(old.status(), StatusCode::UNAUTHORIZED, "two hours later by the emulator's clock, it has expired");

    // A sign-in now (the SSO session of two emulator hours ago) gives tokens a client on wall
    // time accepts: issued now, valid for the lifetime, the sign-in two hours old.
    let (code, verifier) = code_for_adele(&browser, &emulator).await;
    let (_, after) = redeem(&emulator, &code, &verifier).await;
    let wall = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs() as i64;
    let id = claims_of(after["id_token"].as_str().unwrap());
    for claim in ["iat", "nbf"] {
        assert!((id[claim].as_i64().unwrap() - wall).abs() <= 5, "{claim} {} is the wall clock's {wall}", id[claim]);
    }
    assert!(id["exp"].as_i64().unwrap() > wall + 3000);
    let age = wall - id["auth_time"].as_i64().unwrap();
    assert!((2 * 3600 - 5..=2 * 3600 + 5).contains(&age), "the sign-in is two hours old: {age}");
    let access = claims_of(after["access_token"].as_str().unwrap());
    assert!((access["nbf"].as_i64().unwrap() - wall).abs() <= 5);
    assert_eq!(me(after["access_token"].as_str().unwrap()).await.unwrap().status(), StatusCode::OK);
}

#[tokio::test]
async fn consumers_is_the_personal_accounts_tenant_and_refuses_a_work_only_app() {
    let emulator = emulator().await;
    let consumers = authority_at(&emulator, "consumers");
    let discovery: Value = http()
        .get(format!("{consumers}/v2.0/.well-known/openid-configuration"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let personal_tenant = "9188040d-6c67-4c5b-b112-36a304b66dad";
    assert_eq!(discovery["issuer"], format!("{}/{personal_tenant}/v2.0", emulator.base_url()));
    assert_eq!(discovery["token_endpoint"], format!("{consumers}/oauth2/v2.0/token"));

    // The built-in registration takes work accounts only: back to the app with the consumer
    // service's error (no AADSTS code), never a sign-in page.
    let response = browser().get(AuthorizeRequest::new().at_tenant("consumers").url(&emulator)).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::FOUND);
    let back = location(&response);
    assert!(back.as_str().starts_with(REDIRECT_URI), "{back}");
    assert_eq!(query_param(&back, "error").as_deref(), Some("unauthorized_client"));
    assert!(query_param(&back, "error_description").unwrap().contains("not enabled for consumers"));
    assert_eq!(query_param(&back, "state").as_deref(), Some("state-123"));

    let (status, body) = token_request_at(&consumers, &[("grant_type", "authorization_code"), ("code", "x")]).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(body["error"], "unauthorized_client");
}
