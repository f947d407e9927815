//! Tokens as the user, against the emulator over TCP. A web API calling on as its caller (the
//! on-behalf-of grant): Adele's token for the app's API traded for a Graph token as Adele, kept,
//! one request for concurrent callers, and consent missing said as such. And a token for another
//! resource through a refresh token, never handed out due.

#![allow(clippy::unwrap_used, reason = "a test fails on the spot")]

use base64::Engine;
use entra_auth::{Authority, EntraClient, EntraConfig, RefreshFailure, ResourceScopes};
use entra_emulator::{DEFAULT_CLIENT_ID, DEFAULT_CLIENT_SECRET, Emulator, EmulatorConfig};
use secrecy::{ExposeSecret, SecretString};

const REDIRECT_URI: &str = "http://localhost:5001/callback";

async fn emulator(admin_consent: bool) -> Emulator {
    Emulator::start(EmulatorConfig { admin_consent, ..EmulatorConfig::default() }).await.unwrap()
}

fn client(emulator: &Emulator) -> EntraClient {
    let config = EntraConfig::new(
        Authority::new(emulator.base_url().parse().unwrap(), emulator.tenant_id().to_string().parse().unwrap()),
        DEFAULT_CLIENT_ID.to_string(),
        SecretString::from(DEFAULT_CLIENT_SECRET.to_owned()),
        REDIRECT_URI.parse().unwrap(),
    )
    .with_graph_endpoint(emulator.graph_endpoint().parse().unwrap());
    EntraClient::new(config).unwrap()
}

/// Adele signs in at the emulator to a client of the app's API (consenting when asked); her
/// access token for the API, as that client would send it.
async fn adeles_token_for_the_api(emulator: &Emulator) -> String {
    let scope = format!("openid offline_access api://{DEFAULT_CLIENT_ID}/access_as_user");
    adeles_tokens(emulator, &scope).await["access_token"].as_str().unwrap().to_owned()
}

/// Adele signs in at the emulator for `scope` (consenting when asked): the token response.
async fn adeles_tokens(emulator: &Emulator, scope: &str) -> serde_json::Value {
    let browser =
        reqwest::Client::builder().cookie_store(true).redirect(reqwest::redirect::Policy::none()).build().unwrap();
    let mut authorize = url::Url::parse(&format!("{}/oauth2/v2.0/authorize", emulator.authority())).unwrap();
    authorize
        .query_pairs_mut()
        .append_pair("client_id", &DEFAULT_CLIENT_ID.to_string())
        .append_pair("response_type", "code")
        .append_pair("redirect_uri", REDIRECT_URI)
        .append_pair("scope", scope)
        .append_pair("state", "s");
    let page = browser.get(authorize).send().await.unwrap().text().await.unwrap();
    let ctx = |html: &str| {
        let start = html.find("name=\"ctx\" value=\"").unwrap() + "name=\"ctx\" value=\"".len();
        html[start..start + html[start..].find('"').unwrap()].to_owned()
    };
    let form = [("ctx", ctx(&page)), ("loginfmt", "adele@emulator.test".into()), ("passwd", "adele-password".into())];
    let mut answer = browser.post(format!("{}/login", emulator.authority())).form(&form).send().await.unwrap();
    if answer.status() == reqwest::StatusCode::OK {
        let consent = [("ctx", ctx(&answer.text().await.unwrap())), ("accept", "true".into())];
        answer = browser.post(format!("{}/consent", emulator.authority())).form(&consent).send().await.unwrap();
    }
    let back = url::Url::parse(answer.headers()["location"].to_str().unwrap()).unwrap();
    let code = back.query_pairs().find(|(name, _)| name == "code").unwrap().1.into_owned();
    let form = [
        ("client_id", DEFAULT_CLIENT_ID.to_string()),
        ("client_secret", DEFAULT_CLIENT_SECRET.into()),
        ("grant_type", "authorization_code".into()),
        ("code", code),
        ("redirect_uri", REDIRECT_URI.into()),
        ("scope", scope.to_owned()),
    ];
    browser
        .post(format!("{}/oauth2/v2.0/token", emulator.authority()))
        .form(&form)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}

fn claims(token: &SecretString) -> serde_json::Value {
    let payload = token.expose_secret().split('.').nth(1).unwrap();
    serde_json::from_slice(&base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(payload).unwrap()).unwrap()
}

#[tokio::test]
async fn the_api_gets_a_graph_token_as_its_caller_kept_and_shared_by_concurrent_requests() {
    let emulator = emulator(true).await;
    let client = client(&emulator);
    let assertion = adeles_token_for_the_api(&emulator).await;
    let user_read: ResourceScopes = "User.Read".parse().unwrap();
    let before = emulator.token_requests_received();
    emulator.faults().set_token_latency(std::time::Duration::from_millis(300));
    let (first, second) =
        tokio::join!(client.on_behalf_of(&assertion, &user_read), client.on_behalf_of(&assertion, &user_read));
    emulator.faults().set_token_latency(std::time::Duration::ZERO);
    let (first, second) = (first.unwrap(), second.unwrap());
    assert_eq!(emulator.token_requests_received(), before + 1, "one request for both");
    assert_eq!(first.access_token.expose_secret(), second.access_token.expose_secret());
    let graph = claims(&first.access_token);
    assert_eq!(graph["aud"], "https://graph.microsoft.com");
    assert_eq!(graph["oid"], emulator.user_object_id("adele@emulator.test").unwrap().to_string(), "as Adele");
    // Graph takes it as hers.
    let me = client.graph().me(&first.access_token).await.unwrap();
    assert_eq!(me.display_name.as_deref(), Some("Adele Vance"));
    // Kept: the next request asks Entra nothing.
    client.on_behalf_of(&assertion, &user_read).await.unwrap();
    assert_eq!(emulator.token_requests_received(), before + 1);
}

#[tokio::test]
async fn consent_missing_says_the_caller_must_get_it() {
    let emulator = emulator(false).await;
    let client = client(&emulator);
    let assertion = adeles_token_for_the_api(&emulator).await;
    let mail: ResourceScopes = "Mail.Read".parse().unwrap();
    let error = client.on_behalf_of(&assertion, &mail).await.unwrap_err();
    assert!(matches!(&error, RefreshFailure::NeedsSignIn(why) if why.contains("65001")), "{error}");
}

#[tokio::test]
async fn entra_unavailable_is_not_remembered_the_next_request_tries_again() {
    let emulator = emulator(true).await;
    let client = client(&emulator);
    let assertion = adeles_token_for_the_api(&emulator).await;
    let user_read: ResourceScopes = "User.Read".parse().unwrap();
    emulator.faults().fail_token_requests(1, entra_emulator::TokenFailure::new("temporarily_unavailable", 90033));
    let error = client.on_behalf_of(&assertion, &user_read).await.unwrap_err();
    assert!(matches!(error, RefreshFailure::Unavailable(_)), "{error}");
    client.on_behalf_of(&assertion, &user_read).await.expect("asked again, and given");
}

#[tokio::test]
async fn a_resource_token_found_due_among_the_shared_outcomes_is_asked_for_again() {
    // Tokens of two seconds: due once they expire.
    let lifetime = std::time::Duration::from_secs(2);
    let config =
        EmulatorConfig { admin_consent: true, access_token_lifetime: Some(lifetime), ..EmulatorConfig::default() };
    let emulator = Emulator::start(config).await.unwrap();
    let client = client(&emulator);
    let signed_in = adeles_tokens(&emulator, "openid offline_access User.Read").await;
    let refresh_token = SecretString::from(signed_in["refresh_token"].as_str().unwrap().to_owned());
    let api: ResourceScopes = format!("api://{DEFAULT_CLIENT_ID}/access_as_user").parse().unwrap();
    let first = client.tokens_for_scopes(&refresh_token, &api).await.unwrap();
    assert_eq!(claims(&first.access_token)["aud"], format!("api://{DEFAULT_CLIENT_ID}"));
    // A request still holding the same refresh token shares the outcome while it is valid...
    let before = emulator.token_requests_received();
    let shared = client.tokens_for_scopes(&refresh_token, &api).await.unwrap();
    assert_eq!(shared.access_token.expose_secret(), first.access_token.expose_secret());
    assert_eq!(emulator.token_requests_received(), before);
    // ...and not once it is due: Entra is asked again.
    tokio::time::sleep(lifetime + std::time::Duration::from_millis(100)).await;
    let later = client.tokens_for_scopes(&refresh_token, &api).await.unwrap();
    assert_eq!(emulator.token_requests_received(), before + 1);
    assert_ne!(later.access_token.expose_secret(), first.access_token.expose_secret());
    assert!(!later.needs_refresh());
}
