//! Tokens for more than Graph: one refresh token for every resource the user consented to, consent
//! asked for what they did not, an API of the organisation's own with its own audience, and mail.

use entra_emulator::DEFAULT_CLIENT_ID;
use reqwest::StatusCode;
use serde_json::Value;

use crate::helpers::*;

fn api_scope() -> String {
    format!("api://{DEFAULT_CLIENT_ID}/access_as_user")
}

async fn refresh_for(emulator: &entra_emulator::Emulator, refresh_token: &str, scope: &str) -> (StatusCode, Value) {
    token_request(emulator, &[("grant_type", "refresh_token"), ("refresh_token", refresh_token), ("scope", scope)])
        .await
}

#[tokio::test]
async fn one_refresh_token_gets_tokens_for_every_consented_resource_and_consent_is_asked_for_the_rest() {
    // Strict rotation: a refresh token spent by the refused request would fail the next one.
    let emulator = emulator_with(|config| config.strict_refresh_token_rotation = true).await;
    let browser = browser();
    // Adele consents to Graph and the API at sign-in.
    let request = AuthorizeRequest::new().set("scope", "openid profile offline_access User.Read");
    let response = sign_in_as(&browser, &emulator, &request, ADELE, ADELE_PASSWORD).await;
    let code = query_param(&location(&response), "code").unwrap();
    let (status, tokens) = redeem(&emulator, &code, &request.verifier).await;
    assert_eq!(status, StatusCode::OK, "{tokens}");
    let refresh_token = tokens["refresh_token"].as_str().unwrap();

    // Not consented yet: AADSTS65001, and the refresh token is not spent by the failure.
    let (status, body) = refresh_for(&emulator, refresh_token, &format!("{} offline_access", api_scope())).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_entra_error(&body, "invalid_grant", 65001);
    assert_eq!(body["suberror"], "consent_required");

    // Consent (an interactive authorize for the API scope), then the same refresh token works.
    let consent = AuthorizeRequest::new().set("scope", &format!("openid offline_access {}", api_scope()));
    let response = sign_in_as(&browser, &emulator, &consent, ADELE, ADELE_PASSWORD).await;
    assert_eq!(response.status(), StatusCode::FOUND, "consented and sent back");
    let (status, api) = refresh_for(&emulator, refresh_token, &format!("{} offline_access", api_scope())).await;
    assert_eq!(status, StatusCode::OK, "{api}");
    let refresh_token = api["refresh_token"].as_str().unwrap();
    let access_token = api["access_token"].as_str().unwrap();
    let claims = claims_of(access_token);
    assert_eq!(claims["aud"], format!("api://{DEFAULT_CLIENT_ID}"));
    assert_eq!(claims["scp"], "access_as_user");
    // What the API's registration puts in its tokens: the user's roles in it, their groups.
    assert_eq!(claims["roles"], serde_json::json!(["Reader"]));
    assert_eq!(claims["groups"], serde_json::json!([entra_emulator::SALES_GROUP_ID]));

    // The API accepts it; Graph does not, and the API refuses a Graph token.
    let me: Value = http()
        .get(format!("{}/me", emulator.api_endpoint(&DEFAULT_CLIENT_ID.to_string())))
        .bearer_auth(access_token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(me["name"], "Adele Vance");
    assert_eq!(me["aud"], format!("api://{DEFAULT_CLIENT_ID}"));
    let graph =
        http().get(format!("{}/v1.0/me", emulator.graph_endpoint())).bearer_auth(access_token).send().await.unwrap();
    assert_eq!(graph.status(), StatusCode::UNAUTHORIZED);
    let graph_token = tokens["access_token"].as_str().unwrap();
    let api_with_graph_token = http()
        .get(format!("{}/me", emulator.api_endpoint(&DEFAULT_CLIENT_ID.to_string())))
        .bearer_auth(graph_token)
        .send()
        .await
        .unwrap();
    assert_eq!(api_with_graph_token.status(), StatusCode::UNAUTHORIZED);

    // One resource per request.
    let (status, body) = refresh_for(&emulator, refresh_token, &format!("User.Read {}", api_scope())).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(body["error_codes"][0], 28000);
}

#[tokio::test]
async fn messages_need_mail_read() {
    let emulator = emulator().await;
    let browser = browser();
    let request = AuthorizeRequest::new().set("scope", "openid offline_access User.Read Mail.Read");
    let response = sign_in_as(&browser, &emulator, &request, ADELE, ADELE_PASSWORD).await;
    let code = query_param(&location(&response), "code").unwrap();
    let (_, tokens) = redeem(&emulator, &code, &request.verifier).await;
    let messages: Value = http()
        .get(format!("{}/v1.0/me/messages?$top=5", emulator.graph_endpoint()))
        .bearer_auth(tokens["access_token"].as_str().unwrap())
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(messages["value"].as_array().unwrap().len(), 5);
    assert!(messages["value"][0]["subject"].is_string());

    let (code, verifier) = code_for_adele(&browser, &emulator).await;
    let (_, user_read_only) = redeem(&emulator, &code, &verifier).await;
    let refused = http()
        .get(format!("{}/v1.0/me/messages", emulator.graph_endpoint()))
        .bearer_auth(user_read_only["access_token"].as_str().unwrap())
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status(), StatusCode::FORBIDDEN);
}
