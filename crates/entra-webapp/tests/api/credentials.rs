//! No secret to leak: the app signs in *and* refreshes with a certificate (PEM, PKCS#12, App
//! Service's certificate store), a managed identity as federated credential (through the
//! emulator's App Service-style identity endpoint) or a workload identity token file; and each
//! way a credential can be wrong gets the page that names the fix.

use std::time::Duration;

use crate::helpers::*;
use entra_emulator::{CertificateCredential, Emulator, FederatedCredential, ManagedIdentity};
use entra_webapp::config::Settings;
use reqwest::StatusCode;
use rsa::pkcs8::{EncodePrivateKey, EncodePublicKey, LineEnding};

const IDENTITY_CLIENT_ID: &str = "5b0e2a53-6f7c-4c1e-9d8a-2a1f3e4b5c6d";
const IDENTITY_OBJECT_ID: &str = "9c8d7e6f-5a4b-4c3d-8e2f-1a0b9c8d7e6f";
const EXCHANGE: &str = "api://AzureADTokenExchange";
const SHORT_LIFETIME: Duration = Duration::from_secs(2);

/// A self-signed certificate with a fresh RSA key, as one would upload to an app registration.
struct TestCertificate {
    certificate_pem: String,
    certificate_der: Vec<u8>,
    key_pkcs8_der: Vec<u8>,
    key_pem: String,
    public_key_pem: String,
}

impl TestCertificate {
    fn new() -> Self {
        let private = rsa::RsaPrivateKey::new(&mut rand::thread_rng(), 2048).unwrap();
        let key_pem = private.to_pkcs8_pem(LineEnding::LF).unwrap().to_string();
        let key_pkcs8_der = private.to_pkcs8_der().unwrap().as_bytes().to_vec();
        let public_key_pem = private.to_public_key().to_public_key_pem(LineEnding::LF).unwrap();
        let key_pair = rcgen::KeyPair::from_pem_and_sign_algo(&key_pem, &rcgen::PKCS_RSA_SHA256).unwrap();
        let certificate = rcgen::CertificateParams::new(vec!["entra-webapp.test".to_owned()])
            .unwrap()
            .self_signed(&key_pair)
            .unwrap();
        Self {
            certificate_pem: certificate.pem(),
            certificate_der: certificate.der().to_vec(),
            key_pkcs8_der,
            key_pem,
            public_key_pem,
        }
    }

    fn registered(&self) -> CertificateCredential {
        CertificateCredential {
            certificate_pem: self.certificate_pem.clone(),
            public_key_pem: self.public_key_pem.clone(),
        }
    }

    fn pkcs12(&self, password: &str) -> Vec<u8> {
        use p12_keystore::{Certificate, KeyStore, KeyStoreEntry, PrivateKey, PrivateKeyChain};
        let chain = PrivateKeyChain::new(
            b"1".to_vec(),
            PrivateKey::from_der(&self.key_pkcs8_der).unwrap(),
            [Certificate::from_der(&self.certificate_der).unwrap()],
        );
        let mut store = KeyStore::new();
        store.add_entry("app", KeyStoreEntry::PrivateKeyChain(chain));
        store.writer(password).write().unwrap()
    }

    /// Upper-case hex SHA-1 of the DER, as App Service names the file.
    fn thumbprint(&self) -> String {
        entra_auth::Certificate::from_pem(&self.certificate_pem, &self.key_pem).unwrap().thumbprint().to_owned()
    }
}

fn no_secret(settings: &mut Settings) {
    settings.client_secret = None;
}

/// Signs in, then lets the access token expire and loads the profile: a refresh, which must
/// present the credential again.
async fn signs_in_and_refreshes(app: &TestApp) {
    app.sign_in_adele().await;
    assert!(app.is_signed_in().await);
    tokio::time::sleep(SHORT_LIFETIME + Duration::from_millis(1200)).await;
    let profile = app.get("/profile").await;
    assert_eq!(profile.status(), StatusCode::OK, "refreshed with the credential");
    assert!(profile.text().await.unwrap().contains("Adele Vance"));
}

async fn app_with_certificate(registered: &TestCertificate, settings_change: SettingsChange) -> TestApp {
    let registered = registered.registered();
    spawn_app_with(Options {
        access_token_lifetime: Some(SHORT_LIFETIME),
        emulator_setup: Some(Box::new(move |_, client| {
            client.client_secret = None;
            client.certificates = vec![registered];
        })),
        settings_change: Some(settings_change),
        ..Options::default()
    })
    .await
}

#[tokio::test]
async fn a_pem_certificate_signs_in_and_refreshes() {
    let certificate = TestCertificate::new();
    let dir = tempfile::tempdir().unwrap();
    let (cert_path, key_path) = (dir.path().join("app.crt"), dir.path().join("app.key"));
    std::fs::write(&cert_path, &certificate.certificate_pem).unwrap();
    std::fs::write(&key_path, &certificate.key_pem).unwrap();
    let app = app_with_certificate(
        &certificate,
        Box::new(move |settings, _| {
            no_secret(settings);
            settings.client_certificate_path = Some(cert_path.display().to_string());
            settings.client_certificate_key_path = Some(key_path.display().to_string());
        }),
    )
    .await;
    signs_in_and_refreshes(&app).await;
}

#[tokio::test]
async fn a_pkcs12_certificate_with_a_password_signs_in_and_refreshes() {
    let certificate = TestCertificate::new();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("app.pfx");
    std::fs::write(&path, certificate.pkcs12("pfx-password")).unwrap();
    let app = app_with_certificate(
        &certificate,
        Box::new(move |settings, _| {
            no_secret(settings);
            settings.client_certificate_path = Some(path.display().to_string());
            settings.client_certificate_password = Some("pfx-password".to_owned());
        }),
    )
    .await;
    signs_in_and_refreshes(&app).await;
}

#[tokio::test]
async fn an_app_service_certificate_is_found_by_its_thumbprint() {
    let certificate = TestCertificate::new();
    let store = tempfile::tempdir().unwrap();
    std::fs::write(store.path().join(format!("{}.p12", certificate.thumbprint())), certificate.pkcs12("")).unwrap();
    let thumbprint = certificate.thumbprint().to_ascii_lowercase();
    let store_path = store.path().display().to_string();
    let app = app_with_certificate(
        &certificate,
        Box::new(move |settings, _| {
            no_secret(settings);
            settings.client_certificate_thumbprint = Some(thumbprint);
            settings.client_certificate_store = store_path;
        }),
    )
    .await;
    app.sign_in_adele().await;
    assert!(app.is_signed_in().await);
}

#[tokio::test]
async fn a_certificate_the_app_registration_does_not_hold_gets_the_page_that_names_it() {
    let registered = TestCertificate::new();
    let other = TestCertificate::new();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("other.pem");
    std::fs::write(&path, format!("{}{}", other.certificate_pem, other.key_pem)).unwrap();
    let app = app_with_certificate(
        &registered,
        Box::new(move |settings, _| {
            no_secret(settings);
            settings.client_certificate_path = Some(path.display().to_string());
        }),
    )
    .await;
    let response = app.sign_in(ADELE, ADELE_PASSWORD).await;
    let status = response.status();
    let html = response.text().await.unwrap();
    assert_eq!(status, StatusCode::BAD_GATEWAY, "{html}");
    assert!(html.contains("not among the app registration&#39;s certificates"), "{html}");
    assert!(html.contains("CLIENT_CERTIFICATE_PATH or CLIENT_CERTIFICATE_THUMBPRINT"), "{html}");
    assert!(!app.is_signed_in().await);
}

/// The app registration trusts the managed identity as `federated`; the app runs as that
/// identity through the emulator's identity endpoint.
async fn app_with_managed_identity(federated: FederatedCredential, identity_token_lifetime: Duration) -> TestApp {
    spawn_app_with(Options {
        access_token_lifetime: Some(SHORT_LIFETIME),
        emulator_setup: Some(Box::new(move |config, client| {
            config.managed_identities = vec![ManagedIdentity {
                client_id: IDENTITY_CLIENT_ID.to_owned(),
                object_id: IDENTITY_OBJECT_ID.to_owned(),
            }];
            config.managed_identity_token_lifetime = identity_token_lifetime;
            client.client_secret = None;
            client.federated_credentials = vec![federated];
        })),
        settings_change: Some(Box::new(|settings, emulator| {
            no_secret(settings);
            settings.managed_identity_client_id = Some(IDENTITY_CLIENT_ID.to_owned());
            settings.identity_endpoint = Some(emulator.identity_endpoint());
            settings.identity_header = Some(emulator.identity_header());
        })),
        ..Options::default()
    })
    .await
}

fn trust(emulator_issuer: Option<String>, subject: &str, audience: &str) -> FederatedCredential {
    FederatedCredential {
        // The tenant's own issuer unless a test says otherwise; filled once the emulator is known.
        issuer: emulator_issuer.unwrap_or_default(),
        subject: subject.to_owned(),
        audiences: vec![audience.to_owned()],
    }
}

/// The emulator's issuer is `{base}/{tenant}/v2.0`; its base is known only once it runs, so the
/// federated credential is completed through `update_client`.
fn complete_issuer(app: &TestApp) {
    let issuer = format!("{}/v2.0", app.emulator.authority());
    app.emulator.update_client(&entra_emulator::DEFAULT_CLIENT_ID.to_string(), |client| {
        for credential in &mut client.federated_credentials {
            if credential.issuer.is_empty() {
                credential.issuer = issuer.clone();
            }
        }
    });
}

#[tokio::test]
async fn a_managed_identity_signs_in_and_refreshes_reusing_its_token_while_valid() {
    let app = app_with_managed_identity(trust(None, IDENTITY_OBJECT_ID, EXCHANGE), Duration::from_secs(3600)).await;
    complete_issuer(&app);
    signs_in_and_refreshes(&app).await;
    assert_eq!(app.emulator.identity_tokens_issued(), 1, "one identity token served the code and the refresh");
}

#[tokio::test]
async fn a_refresh_after_the_identity_token_expired_fetches_a_new_one() {
    // A 4 s identity token is reused for its first half only.
    let app = app_with_managed_identity(trust(None, IDENTITY_OBJECT_ID, EXCHANGE), Duration::from_secs(4)).await;
    complete_issuer(&app);
    app.sign_in_adele().await;
    assert_eq!(app.emulator.identity_tokens_issued(), 1);
    tokio::time::sleep(Duration::from_secs(4) + Duration::from_millis(500)).await;
    let profile = app.get("/profile").await;
    assert_eq!(profile.status(), StatusCode::OK, "the refresh presented a fresh identity token");
    assert_eq!(app.emulator.identity_tokens_issued(), 2);
}

async fn assert_federation_refused(federated: FederatedCredential, phrase: &str) {
    let app = app_with_managed_identity(federated, Duration::from_secs(3600)).await;
    complete_issuer(&app);
    let response = app.sign_in(ADELE, ADELE_PASSWORD).await;
    assert_eq!(response.status(), StatusCode::BAD_GATEWAY);
    let html = response.text().await.unwrap();
    assert!(html.contains(phrase), "expected {phrase:?} in {html}");
    assert!(html.contains("MANAGED_IDENTITY_CLIENT_ID (and the app registration&#39;s federated credential"), "{html}");
    assert!(!app.is_signed_in().await);
}

#[tokio::test]
async fn a_federated_credential_for_another_subject_is_refused_with_the_fix() {
    assert_federation_refused(trust(None, "00000000-0000-0000-0000-00000000beef", EXCHANGE), "its subject differs")
        .await;
}

#[tokio::test]
async fn a_federated_credential_for_another_audience_is_refused_with_the_fix() {
    assert_federation_refused(trust(None, IDENTITY_OBJECT_ID, "api://SomethingElse"), "its audience differs").await;
}

#[tokio::test]
async fn a_federated_credential_for_another_issuer_is_refused_with_the_fix() {
    let elsewhere = Some("https://issuer.elsewhere.test/v2.0".to_owned());
    assert_federation_refused(trust(elsewhere, IDENTITY_OBJECT_ID, EXCHANGE), "its issuer differs").await;
}

#[tokio::test]
async fn an_identity_endpoint_that_gives_no_token_is_a_503_and_readiness_says_so() {
    let app = spawn_app_with(Options {
        emulator_setup: Some(Box::new(|_, client| client.client_secret = None)),
        settings_change: Some(Box::new(|settings, emulator| {
            no_secret(settings);
            // No such identity is assigned to the app.
            settings.managed_identity_client_id = Some(IDENTITY_CLIENT_ID.to_owned());
            settings.identity_endpoint = Some(emulator.identity_endpoint());
            settings.identity_header = Some(emulator.identity_header());
        })),
        ..Options::default()
    })
    .await;
    let authorize = app.start_sign_in("/login").await;
    let callback = app.sign_in_at_emulator(&authorize, ADELE, ADELE_PASSWORD, true).await;
    let response = app.browser.get(&callback).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
    let html = response.text().await.unwrap();
    assert!(html.contains("could not obtain the credential"), "{html}");
    assert!(html.contains("check the app setting MANAGED_IDENTITY_CLIENT_ID"), "{html}");
    // Readiness waits for the tenant's metadata, loaded in the background.
    let mut ready = String::new();
    for _ in 0..50 {
        ready = app.get("/readyz").await.text().await.unwrap();
        if ready != "not ready: identity provider metadata not loaded" {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(ready, "not ready: client credential unavailable");
}

#[tokio::test]
async fn a_workload_identity_token_file_signs_in_and_refreshes_reading_the_file_each_time() {
    let dir = tempfile::tempdir().unwrap();
    let token_file = dir.path().join("azure-identity-token");
    let file_for_settings = token_file.clone();
    let app = spawn_app_with(Options {
        access_token_lifetime: Some(SHORT_LIFETIME),
        emulator_setup: Some(Box::new(|config, client| {
            // The token in the file comes from the emulator's identity endpoint: a token of this
            // tenant about the workload's identity, as AKS projects one.
            config.managed_identities = vec![ManagedIdentity {
                client_id: IDENTITY_CLIENT_ID.to_owned(),
                object_id: IDENTITY_OBJECT_ID.to_owned(),
            }];
            client.client_secret = None;
            client.federated_credentials = vec![trust(None, IDENTITY_OBJECT_ID, EXCHANGE)];
        })),
        settings_change: Some(Box::new(move |settings, _| {
            no_secret(settings);
            // The platform mounts the file before the app starts.
            std::fs::write(&file_for_settings, "").unwrap();
            settings.federated_token_file = Some(file_for_settings.display().to_string());
        })),
        ..Options::default()
    })
    .await;
    complete_issuer(&app);
    write_workload_token(&app.emulator, &token_file).await;
    app.sign_in_adele().await;
    // The platform rotates the file; the app must read the new token, not a remembered one.
    std::fs::write(&token_file, "not a token").unwrap();
    tokio::time::sleep(SHORT_LIFETIME + Duration::from_millis(1200)).await;
    let refused = app.get("/profile").await;
    assert_ne!(refused.status(), StatusCode::OK, "a broken file is read, so the refresh fails");
    write_workload_token(&app.emulator, &token_file).await;
    let profile = app.get("/profile").await;
    assert_eq!(profile.status(), StatusCode::OK, "the rotated file is read afresh");
}

/// Writes a token from the emulator's identity endpoint to `path`.
async fn write_workload_token(emulator: &Emulator, path: &std::path::Path) {
    let url = format!(
        "{}?resource={EXCHANGE}&api-version=2019-08-01&client_id={IDENTITY_CLIENT_ID}",
        emulator.identity_endpoint()
    );
    let request = client_builder().build().unwrap().get(&url).header("X-IDENTITY-HEADER", emulator.identity_header());
    let body: serde_json::Value = request.send().await.unwrap().json().await.unwrap();
    std::fs::write(path, body["access_token"].as_str().unwrap()).unwrap();
}
