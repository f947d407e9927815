use crate::helpers::*;
use reqwest::StatusCode;
use serde_json::Value;

#[tokio::test]
async fn tenant_discovery_has_entra_v2_shape() {
    let emulator = emulator().await;
    let url = format!("{}/v2.0/.well-known/openid-configuration", emulator.authority());
    let response = http().get(&url).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(response.headers()["cache-control"], "max-age=86400, private");
    let doc: Value = response.json().await.unwrap();
    assert_eq!(doc["issuer"], emulator.issuer());
    assert_eq!(doc["authorization_endpoint"], format!("{}/oauth2/v2.0/authorize", emulator.authority()));
    assert_eq!(doc["token_endpoint"], format!("{}/oauth2/v2.0/token", emulator.authority()));
    assert_eq!(doc["end_session_endpoint"], format!("{}/oauth2/v2.0/logout", emulator.authority()));
    assert_eq!(doc["jwks_uri"], format!("{}/discovery/v2.0/keys", emulator.authority()));
    assert_eq!(doc["id_token_signing_alg_values_supported"], serde_json::json!(["RS256"]));
    assert_eq!(doc["frontchannel_logout_supported"], true);
    assert_eq!(
        doc["token_endpoint_auth_methods_supported"],
        serde_json::json!(["client_secret_post", "private_key_jwt", "client_secret_basic"])
    );
}

#[tokio::test]
async fn common_and_organizations_publish_the_tenantid_issuer_template() {
    let emulator = emulator().await;
    for alias in ["common", "organizations"] {
        let url = format!("{}/{alias}/v2.0/.well-known/openid-configuration", emulator.base_url());
        let doc: Value = http().get(&url).send().await.unwrap().json().await.unwrap();
        assert_eq!(doc["issuer"], format!("{}/{{tenantid}}/v2.0", emulator.base_url()));
        assert_eq!(doc["token_endpoint"], format!("{}/{alias}/oauth2/v2.0/token", emulator.base_url()));
    }
}

#[tokio::test]
async fn unknown_tenant_is_refused_in_entra_error_shape() {
    let emulator = emulator().await;
    let url = format!("{}/{}/v2.0/.well-known/openid-configuration", emulator.base_url(), uuid::Uuid::new_v4());
    let response = http().get(&url).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    assert_entra_error(&response.json().await.unwrap(), "invalid_request", 90002);
}

#[tokio::test]
async fn jwks_publishes_keys_as_entra_does_and_keeps_old_keys_after_rotation() {
    use base64::Engine;
    use sha1::Digest;
    let emulator = emulator().await;
    let url = format!("{}/discovery/v2.0/keys", emulator.authority());
    let jwks: Value = http().get(&url).send().await.unwrap().json().await.unwrap();
    let keys = jwks["keys"].as_array().unwrap();
    assert_eq!(keys.len(), 1);
    assert_eq!(keys[0]["kty"], "RSA");
    // Entra's shape: no `alg` (a client must not rely on it), `x5t` = `kid` = the SHA-1
    // thumbprint of the `x5c` certificate, and the issuer the key signs for.
    assert!(keys[0].get("alg").is_none(), "{}", keys[0]);
    assert_eq!(keys[0]["x5t"], keys[0]["kid"]);
    let certificate = base64::engine::general_purpose::STANDARD.decode(keys[0]["x5c"][0].as_str().unwrap()).unwrap();
    let thumbprint = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(sha1::Sha1::digest(&certificate));
    assert_eq!(keys[0]["x5t"], thumbprint.as_str());
    assert_eq!(keys[0]["issuer"], emulator.issuer());
    let common: Value = http()
        .get(format!("{}/common/discovery/v2.0/keys", emulator.base_url()))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(common["keys"][0]["issuer"], format!("{}/{{tenantid}}/v2.0", emulator.base_url()));
    let old_kid = keys[0]["kid"].as_str().unwrap().to_owned();

    let new_kid = emulator.rotate_signing_key().unwrap();

    let jwks: Value = http().get(&url).send().await.unwrap().json().await.unwrap();
    let kids: Vec<&str> = jwks["keys"].as_array().unwrap().iter().map(|k| k["kid"].as_str().unwrap()).collect();
    assert_eq!(kids, vec![new_kid.as_str(), old_kid.as_str()]);
}
