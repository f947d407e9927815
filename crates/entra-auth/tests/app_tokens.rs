//! The app's own tokens (client credentials) from the emulator over TCP: the application
//! permission granted on the resource in `roles`, kept until due, one request for concurrent
//! callers, and the refusals: a multi-tenant authority, a wrong secret.

#![allow(clippy::unwrap_used, reason = "a test fails on the spot")]

use base64::Engine;
use entra_auth::{AppTokenError, Authority, EntraClient, EntraConfig};
use entra_emulator::{ClientRegistration, DEFAULT_CLIENT_ID, Emulator, EmulatorConfig};
use secrecy::{ExposeSecret, SecretString};

fn api() -> String {
    format!("api://{DEFAULT_CLIENT_ID}")
}

async fn emulator() -> Emulator {
    let registration = ClientRegistration {
        application_permissions: vec![format!("{}/Orders.Read.All", api())],
        ..ClientRegistration::default()
    };
    Emulator::start(EmulatorConfig { clients: vec![registration], ..EmulatorConfig::default() }).await.unwrap()
}

fn client(emulator: &Emulator, tenant: &str, secret: &str) -> EntraClient {
    let config = EntraConfig::new(
        Authority::new(emulator.base_url().parse().unwrap(), tenant.parse().unwrap()),
        DEFAULT_CLIENT_ID.to_string(),
        SecretString::from(secret.to_owned()),
        "http://localhost:5001/callback".parse().unwrap(),
    );
    EntraClient::new(config).unwrap()
}

fn claims(token: &SecretString) -> serde_json::Value {
    let payload = token.expose_secret().split('.').nth(1).unwrap();
    serde_json::from_slice(&base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(payload).unwrap()).unwrap()
}

#[tokio::test]
async fn the_app_gets_a_token_of_its_own_kept_until_due_and_shared_by_concurrent_callers() {
    let emulator = emulator().await;
    let client = client(&emulator, &emulator.tenant_id().to_string(), entra_emulator::DEFAULT_CLIENT_SECRET);
    let before = emulator.token_requests_received();
    // Four callers at once (the emulator answers slowly, so they overlap): one request.
    emulator.faults().set_token_latency(std::time::Duration::from_millis(300));
    let resource = api();
    let four = tokio::join!(
        client.app_token(&resource),
        client.app_token(&resource),
        client.app_token(&resource),
        client.app_token(&resource)
    );
    emulator.faults().set_token_latency(std::time::Duration::ZERO);
    assert_eq!(emulator.token_requests_received(), before + 1, "one request for four callers");
    let tokens = [four.0.unwrap(), four.1.unwrap(), four.2.unwrap(), four.3.unwrap()];
    assert!(tokens.iter().all(|token| token.access_token.expose_secret() == tokens[0].access_token.expose_secret()));
    let claims = claims(&tokens[0].access_token);
    assert_eq!(claims["aud"], api());
    assert_eq!(claims["idtyp"], "app");
    assert_eq!(claims["roles"], serde_json::json!(["Orders.Read.All"]));
    assert_eq!(tokens[0].expires_at, claims["exp"].as_u64().unwrap());
    // Kept: the next call asks nothing; a trailing slash names the same resource.
    client.app_token(&format!("{}/", api())).await.unwrap();
    assert_eq!(emulator.token_requests_received(), before + 1);
    // Another resource, a token of its own.
    let graph = client.app_token("https://graph.microsoft.com").await.unwrap();
    assert_eq!(self::claims(&graph.access_token)["aud"], "https://graph.microsoft.com");
    assert_eq!(emulator.token_requests_received(), before + 2);
}

#[tokio::test]
async fn a_multi_tenant_authority_or_a_wrong_secret_gets_no_token() {
    let emulator = emulator().await;
    let organizations = client(&emulator, "organizations", entra_emulator::DEFAULT_CLIENT_SECRET);
    let before = emulator.token_requests_received();
    assert!(matches!(organizations.app_token(&api()).await, Err(AppTokenError::NoTenant(_))));
    assert_eq!(emulator.token_requests_received(), before, "refused before asking Entra");
    let wrong = client(&emulator, &emulator.tenant_id().to_string(), "not-the-secret");
    let error = wrong.app_token(&api()).await.unwrap_err();
    assert!(matches!(error, AppTokenError::Request(_)), "{error}");
    assert!(error.to_string().contains("invalid_client"), "{error}");
}
