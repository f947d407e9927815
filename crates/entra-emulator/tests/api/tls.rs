use crate::helpers::{REQUEST_TIMEOUT, http};
use entra_emulator::{Emulator, EmulatorConfig, ListenOptions};
use reqwest::StatusCode;

#[tokio::test]
async fn tls_self_signed_serves_https_trusted_through_the_written_ca() {
    let dir = tempfile::tempdir().unwrap();
    let options = ListenOptions { tls_self_signed_dir: Some(dir.path().to_path_buf()), ..ListenOptions::default() };
    let emulator = Emulator::start_with(EmulatorConfig::default(), options).await.unwrap();
    assert!(emulator.base_url().starts_with("https://127.0.0.1:"));
    let ca_pem = std::fs::read(emulator.ca_pem_path().unwrap()).unwrap();
    let ca = reqwest::Certificate::from_pem(&ca_pem).unwrap();
    let client = reqwest::Client::builder().add_root_certificate(ca).timeout(REQUEST_TIMEOUT).build().unwrap();
    let url = format!("{}/v2.0/.well-known/openid-configuration", emulator.authority());
    let response = client.get(&url).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let localhost = url.replace("127.0.0.1", "localhost");
    assert_eq!(client.get(&localhost).send().await.unwrap().status(), StatusCode::OK);

    let untrusting = http();
    assert!(untrusting.get(&url).send().await.is_err(), "an untrusted client refuses the certificate");
}
