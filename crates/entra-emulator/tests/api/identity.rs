//! The App Service-style managed identity endpoint and federated client assertions.

use entra_emulator::{FederatedCredential, ManagedIdentity};
use reqwest::StatusCode;
use serde_json::Value;

use crate::helpers::*;

const IDENTITY: &str = "5b0e2a53-6f7c-4c1e-9d8a-2a1f3e4b5c6d";
const OBJECT: &str = "9c8d7e6f-5a4b-4c3d-8e2f-1a0b9c8d7e6f";

async fn with_identity() -> entra_emulator::Emulator {
    emulator_with(|config| {
        config.managed_identities = vec![ManagedIdentity { client_id: IDENTITY.into(), object_id: OBJECT.into() }];
    })
    .await
}

async fn ask(emulator: &entra_emulator::Emulator, header: &str, query: &str) -> (StatusCode, Value) {
    let response = http()
        .get(format!("{}?{query}", emulator.identity_endpoint()))
        .header("X-IDENTITY-HEADER", header)
        .send()
        .await
        .unwrap();
    (response.status(), response.json().await.unwrap())
}

#[tokio::test]
async fn the_identity_endpoint_issues_a_token_exchange_token_for_the_assigned_identity_only() {
    let emulator = with_identity().await;
    let good = format!("resource=api://AzureADTokenExchange&api-version=2019-08-01&client_id={IDENTITY}");
    let (status, body) = ask(&emulator, &emulator.identity_header(), &good).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["client_id"], IDENTITY);
    let expires_on: i64 = body["expires_on"].as_str().unwrap().parse().unwrap();
    assert!(expires_on > 0, "App Service sends expires_on as a string of unix seconds");
    let payload = body["access_token"].as_str().unwrap().split('.').nth(1).unwrap();
    let claims: Value = serde_json::from_slice(
        &base64::Engine::decode(&base64::engine::general_purpose::URL_SAFE_NO_PAD, payload).unwrap(),
    )
    .unwrap();
    assert_eq!(claims["sub"], OBJECT);
    assert_eq!(claims["aud"], "api://AzureADTokenExchange");
    assert_eq!(claims["iss"], format!("{}/v2.0", emulator.authority()));
    assert_eq!(emulator.identity_tokens_issued(), 1);

    assert_eq!(ask(&emulator, "wrong", &good).await.0, StatusCode::UNAUTHORIZED, "the header secret is checked");
    let old_api = good.replace("2019-08-01", "2017-09-01");
    assert_eq!(ask(&emulator, &emulator.identity_header(), &old_api).await.0, StatusCode::BAD_REQUEST);
    let stranger = good.replace(IDENTITY, "00000000-0000-0000-0000-000000000001");
    assert_eq!(ask(&emulator, &emulator.identity_header(), &stranger).await.0, StatusCode::BAD_REQUEST);
    assert_eq!(emulator.identity_tokens_issued(), 1, "refusals issue nothing");
}

#[tokio::test]
async fn a_federated_assertion_is_checked_against_issuer_subject_and_audience() {
    let emulator = with_identity().await;
    let query = format!("resource=api://AzureADTokenExchange&api-version=2019-08-01&client_id={IDENTITY}");
    let token =
        ask(&emulator, &emulator.identity_header(), &query).await.1["access_token"].as_str().unwrap().to_owned();
    let issuer = format!("{}/v2.0", emulator.authority());
    let token_url = format!("{}/oauth2/v2.0/token", emulator.authority());
    let attempt = |credential: FederatedCredential| {
        emulator.update_client(&client_id(), |client| client.federated_credentials = vec![credential]);
        let form = [
            ("client_id", client_id()),
            ("grant_type", "client_credentials".to_owned()),
            ("scope", "https://graph.microsoft.com/.default".to_owned()),
            ("client_assertion_type", "urn:ietf:params:oauth:client-assertion-type:jwt-bearer".to_owned()),
            ("client_assertion", token.clone()),
        ];
        let request = http().post(&token_url).form(&form);
        async move {
            let body: Value = request.send().await.unwrap().json().await.unwrap();
            body["error_codes"][0].as_u64()
        }
    };
    let fic = |issuer: &str, subject: &str, audience: &str| FederatedCredential {
        issuer: issuer.into(),
        subject: subject.into(),
        audiences: vec![audience.into()],
    };
    assert_eq!(attempt(fic("https://elsewhere.test", OBJECT, "api://AzureADTokenExchange")).await, Some(700211));
    assert_eq!(attempt(fic(&issuer, "someone-else", "api://AzureADTokenExchange")).await, Some(700213));
    assert_eq!(attempt(fic(&issuer, OBJECT, "api://Other")).await, Some(700212));
    // Matching: past client authentication (client_credentials is not a grant the emulator serves).
    let matching = attempt(fic(&issuer, OBJECT, "api://AzureADTokenExchange")).await;
    assert!(!matches!(matching, Some(700211 | 700212 | 700213 | 700027 | 700024)), "{matching:?}");
}
