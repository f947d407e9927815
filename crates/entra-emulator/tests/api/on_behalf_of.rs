//! On behalf of a user (a web API calling another API as the user who called it): the API trades
//! the access token it received for one for another resource, as MSAL's
//! `acquire_token_on_behalf_of` asks, and the errors Entra gives.

use entra_emulator::DEFAULT_CLIENT_ID;
use reqwest::StatusCode;
use serde_json::Value;

use crate::helpers::*;

const OBO: &str = "urn:ietf:params:oauth:grant-type:jwt-bearer";

/// Adele's access token for the app's own API (what a client calling that API sends it).
async fn token_for_the_api(emulator: &entra_emulator::Emulator) -> String {
    let scope = format!("openid offline_access api://{DEFAULT_CLIENT_ID}/access_as_user");
    let request = AuthorizeRequest::new().set("scope", &scope);
    let response = sign_in_as(&browser(), emulator, &request, ADELE, ADELE_PASSWORD).await;
    let code = query_param(&location(&response), "code").unwrap();
    let (status, tokens) = token_request(
        emulator,
        &[
            ("grant_type", "authorization_code"),
            ("code", &code),
            ("redirect_uri", REDIRECT_URI),
            ("code_verifier", &request.verifier),
            ("scope", &scope),
        ],
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{tokens}");
    tokens["access_token"].as_str().unwrap().to_owned()
}

async fn on_behalf_of(emulator: &entra_emulator::Emulator, assertion: &str, scope: &str) -> (StatusCode, Value) {
    token_request(
        emulator,
        &[("grant_type", OBO), ("requested_token_use", "on_behalf_of"), ("assertion", assertion), ("scope", scope)],
    )
    .await
}

#[tokio::test]
async fn an_api_gets_a_token_for_another_resource_as_the_user_who_called_it() {
    let emulator = emulator_with(|config| config.admin_consent = true).await;
    let assertion = token_for_the_api(&emulator).await;
    let (status, body) =
        on_behalf_of(&emulator, &assertion, "https://graph.microsoft.com/User.Read offline_access").await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert!(body["refresh_token"].is_string(), "offline_access asked: {body}");
    let claims = claims_of(body["access_token"].as_str().unwrap());
    assert_eq!(claims["aud"], "https://graph.microsoft.com");
    assert_eq!(claims["oid"], emulator.user_object_id(ADELE).unwrap().to_string(), "as Adele");
    assert_eq!(claims["appid"], client_id(), "obtained by the API");
    let me: Value = http()
        .get(format!("{}/v1.0/me", emulator.graph_endpoint()))
        .bearer_auth(body["access_token"].as_str().unwrap())
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(me["displayName"], "Adele Vance");
}

#[tokio::test]
async fn what_entra_refuses_on_behalf_of_a_user_the_emulator_refuses() {
    let emulator = emulator().await;
    let assertion = token_for_the_api(&emulator).await;
    // Adele consented to the API only: Mail.Read needs her consent (or an admin's) first.
    let (_, body) = on_behalf_of(&emulator, &assertion, "Mail.Read").await;
    assert_entra_error(&body, "invalid_grant", 65001);
    assert_eq!(body["suberror"], "consent_required");
    // Not a token for this app's API: a Graph token, an application's own, a forgery.
    let (_, graph) = code_and_graph_token(&emulator).await;
    let (_, body) = on_behalf_of(&emulator, &graph, "User.Read").await;
    assert_entra_error(&body, "invalid_grant", 50013);
    let scope = format!("api://{DEFAULT_CLIENT_ID}/.default");
    let (_, own) = token_request(&emulator, &[("grant_type", "client_credentials"), ("scope", &scope)]).await;
    let (_, body) = on_behalf_of(&emulator, own["access_token"].as_str().unwrap(), "User.Read").await;
    assert_entra_error(&body, "invalid_grant", 50013);
    let (_, body) = on_behalf_of(&emulator, &format!("{assertion}x"), "User.Read").await;
    assert_entra_error(&body, "invalid_grant", 50013);
    // Without `requested_token_use`.
    let form = [("grant_type", OBO), ("assertion", assertion.as_str()), ("scope", "User.Read")];
    let (_, body) = token_request(&emulator, &form).await;
    assert_entra_error(&body, "invalid_request", 900144);
    // Once expired.
    emulator.advance_clock(std::time::Duration::from_secs(2 * 3600));
    let (_, body) = on_behalf_of(&emulator, &assertion, "User.Read").await;
    assert_entra_error(&body, "invalid_grant", 500133);
}

/// A Graph access token of Adele's (the default sign-in).
async fn code_and_graph_token(emulator: &entra_emulator::Emulator) -> (String, String) {
    let (code, verifier) = code_for_adele(&browser(), emulator).await;
    let (_, tokens) = redeem(emulator, &code, &verifier).await;
    (code, tokens["access_token"].as_str().unwrap().to_owned())
}
