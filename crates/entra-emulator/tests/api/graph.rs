use std::time::Duration;

use crate::helpers::*;
use entra_emulator::{Emulator, User};
use reqwest::StatusCode;
use serde_json::Value;

async fn access_token_for(emulator: &Emulator, upn: &str, password: &str, scope: &str) -> String {
    let browser = browser();
    let request = AuthorizeRequest::new().set("scope", scope);
    let response = sign_in_as(&browser, emulator, &request, upn, password).await;
    let code = query_param(&location(&response), "code").expect("code");
    let (status, body) = token_request(
        emulator,
        &[
            ("grant_type", "authorization_code"),
            ("code", &code),
            ("redirect_uri", REDIRECT_URI),
            ("code_verifier", &request.verifier),
        ],
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    body["access_token"].as_str().unwrap().to_owned()
}

async fn graph_get(emulator: &Emulator, path: &str, token: Option<&str>) -> reqwest::Response {
    let mut request = http().get(format!("{}{path}", emulator.graph_endpoint()));
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    request.send().await.unwrap()
}

fn assert_graph_error(body: &Value, code: &str) {
    assert_eq!(body["error"]["code"], code, "{body}");
    assert!(body["error"]["message"].is_string());
    assert!(body["error"]["innerError"]["request-id"].is_string());
}

#[tokio::test]
async fn me_returns_the_signed_in_user_in_graph_shape() {
    let emulator = emulator().await;
    let token = access_token_for(&emulator, ADELE, ADELE_PASSWORD, "openid profile User.Read").await;
    let response = graph_get(&emulator, "/v1.0/me", Some(&token)).await;
    assert_eq!(response.status(), StatusCode::OK);
    let me: Value = response.json().await.unwrap();
    assert_eq!(me["displayName"], "Adele Vance");
    assert_eq!(me["userPrincipalName"], ADELE);
    assert_eq!(me["mail"], "adele.vance@emulator.test");
    assert_eq!(me["id"], emulator.user_object_id(ADELE).unwrap().to_string());
    assert_eq!(me["@odata.context"], "https://graph.microsoft.com/v1.0/$metadata#users/$entity");
    assert!(me["businessPhones"].is_array());
}

#[tokio::test]
async fn me_honours_select_and_refuses_unknown_properties() {
    let emulator = emulator().await;
    let token = access_token_for(&emulator, MALLORY, "mallory-password", "openid User.Read").await;
    let me: Value = graph_get(&emulator, "/v1.0/me?$select=displayName,mail", Some(&token)).await.json().await.unwrap();
    assert_eq!(me["displayName"], "<script>alert(1)</script> Mallory");
    assert!(me["mail"].is_null(), "mallory has no mail");
    assert!(me.get("userPrincipalName").is_none());

    // Properties outside the default set are there when asked for, as on Graph.
    let more = "/v1.0/me?$select=id,accountEnabled,userType,mailNickname,department";
    let me: Value = graph_get(&emulator, more, Some(&token)).await.json().await.unwrap();
    assert_eq!(me["accountEnabled"], true);
    assert_eq!(me["userType"], "Member");
    assert_eq!(me["mailNickname"], "mallory");
    assert!(me["department"].is_null() && me["id"].is_string());
    assert!(me.get("displayName").is_none());

    let bad = graph_get(&emulator, "/v1.0/me?$select=password", Some(&token)).await;
    assert_eq!(bad.status(), StatusCode::BAD_REQUEST);
    assert_graph_error(&bad.json().await.unwrap(), "BadRequest");
}

#[tokio::test]
async fn missing_forged_and_expired_tokens_get_401_invalid_authentication_token() {
    let emulator = emulator().await;
    let token = access_token_for(&emulator, ADELE, ADELE_PASSWORD, "openid User.Read").await;

    let missing = graph_get(&emulator, "/v1.0/me", None).await;
    assert_eq!(missing.status(), StatusCode::UNAUTHORIZED);
    assert!(missing.headers().contains_key("www-authenticate"));
    assert_graph_error(&missing.json().await.unwrap(), "InvalidAuthenticationToken");

    let mut forged = token.clone();
    forged.pop();
    forged.push(if token.ends_with('A') { 'B' } else { 'A' });
    let forged = graph_get(&emulator, "/v1.0/me", Some(&forged)).await;
    assert_eq!(forged.status(), StatusCode::UNAUTHORIZED);

    // Past the longest lifetime Entra gives (90 minutes).
    emulator.advance_clock(Duration::from_secs(5401));
    let expired = graph_get(&emulator, "/v1.0/me", Some(&token)).await;
    assert_eq!(expired.status(), StatusCode::UNAUTHORIZED);
    let body: Value = expired.json().await.unwrap();
    assert!(body["error"]["message"].as_str().unwrap().contains("expired"));
}

#[tokio::test]
async fn a_token_without_user_read_gets_403() {
    let emulator = emulator().await;
    let token = access_token_for(&emulator, ADELE, ADELE_PASSWORD, "openid profile").await;
    let response = graph_get(&emulator, "/v1.0/me", Some(&token)).await;
    assert_eq!(response.status(), StatusCode::FORBIDDEN);
    assert_graph_error(&response.json().await.unwrap(), "Authorization_RequestDenied");
}

#[tokio::test]
async fn photo_is_served_or_image_not_found() {
    let photo = tempfile::NamedTempFile::new().unwrap();
    let png = b"\x89PNG\r\n\x1a\nnot-really-a-png";
    std::fs::write(photo.path(), png).unwrap();
    let path = photo.path().to_path_buf();
    let emulator = emulator_with(move |config| {
        config.users[0].photo = Some(path);
    })
    .await;
    let adele = access_token_for(&emulator, ADELE, ADELE_PASSWORD, "openid User.Read").await;
    let response = graph_get(&emulator, "/v1.0/me/photo/$value", Some(&adele)).await;
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(response.headers()["content-type"], "image/png");
    assert_eq!(response.bytes().await.unwrap().as_ref(), png);

    let mallory = access_token_for(&emulator, MALLORY, "mallory-password", "openid User.Read").await;
    let missing = graph_get(&emulator, "/v1.0/me/photo/$value", Some(&mallory)).await;
    assert_eq!(missing.status(), StatusCode::NOT_FOUND);
    assert_graph_error(&missing.json().await.unwrap(), "ImageNotFound");
}

#[tokio::test]
async fn userinfo_answers_for_an_openid_token() {
    let emulator = emulator().await;
    let token = access_token_for(&emulator, ADELE, ADELE_PASSWORD, "openid profile email User.Read").await;
    let info: Value = graph_get(&emulator, "/oidc/userinfo", Some(&token)).await.json().await.unwrap();
    assert_eq!(info["name"], "Adele Vance");
    assert_eq!(info["email"], "adele.vance@emulator.test");
    assert!(info["sub"].is_string());
}

#[tokio::test]
async fn users_load_from_json_and_toml_files() {
    let dir = tempfile::tempdir().unwrap();
    let json_path = dir.path().join("users.json");
    std::fs::write(
        &json_path,
        r#"[{"userPrincipalName":"a@x.test","password":"p","displayName":"A","mail":null,"jobTitle":"Dev"}]"#,
    )
    .unwrap();
    let toml_path = dir.path().join("users.toml");
    std::fs::write(
        &toml_path,
        "[[users]]\nuserPrincipalName = \"b@x.test\"\npassword = \"p\"\ndisplayName = \"B\"\noid = \"5b9cf4a2-7f43-4bd6-9d8b-0b6a4e3c2d10\"\n",
    )
    .unwrap();
    let from_json: Vec<User> = entra_emulator::load_users(&json_path).unwrap();
    assert_eq!(from_json[0].user_principal_name, "a@x.test");
    assert!(from_json[0].mail.is_none());
    let from_toml = entra_emulator::load_users(&toml_path).unwrap();
    assert_eq!(from_toml[0].object_id().to_string(), "5b9cf4a2-7f43-4bd6-9d8b-0b6a4e3c2d10");

    std::fs::write(&json_path, r#"[{"userPrincipalName":"a@x.test"}]"#).unwrap();
    let err = entra_emulator::load_users(&json_path).unwrap_err().to_string();
    assert!(err.contains("users.json") && err.contains("password"), "{err}");
}
