//! A user in many groups, through the proxy, to an app whose front end has the usual limit of
//! 8 KB per request header (nginx's default; Apache and gunicorn have the same): the principal
//! header must fit, or that user could never reach the app.

use base64::Engine;
use reqwest::StatusCode;
use serde_json::Value;

use crate::helpers::*;
use crate::nginx::Nginx;
use crate::upstream::{self, Upstream};

/// The tests' upstream behind nginx with its default limits, and the proxy in front of that
/// nginx, its emulator's Adele in 150 more groups (all in her ID token).
async fn behind_nginx(
    change: impl FnOnce(&mut entra_webapp::config::Settings) + Send + 'static,
) -> (Upstream, Nginx, TestApp) {
    let upstream = upstream::start().await;
    let app_address = upstream.url.clone();
    let nginx = Nginx::start(|port| {
        format!("server {{\n listen 127.0.0.1:{port};\n location / {{ proxy_pass {app_address}; }}\n}}\n")
    });
    let nginx_url = format!("http://127.0.0.1:{}", nginx.port);
    let app = spawn_app_with(Options {
        emulator_setup: Some(adele_in_many_groups(150)),
        settings_change: Some(Box::new(move |settings, _| {
            settings.upstream_url = Some(nginx_url);
            change(settings);
        })),
        ..Options::default()
    })
    .await;
    (upstream, nginx, app)
}

fn decoded(principal: &str) -> Value {
    serde_json::from_slice(&base64::engine::general_purpose::STANDARD.decode(principal).unwrap()).unwrap()
}

fn claim_values(principal: &Value, typ: &str) -> Vec<String> {
    let claims = principal["claims"].as_array().unwrap().iter();
    claims.filter(|claim| claim["typ"] == typ).map(|claim| claim["val"].as_str().unwrap().to_owned()).collect()
}

/// What reached the app for `GET path`, and the principal it got.
async fn through(app: &TestApp, path: &str) -> (Value, String) {
    let response = app.get(path).await;
    let status = response.status();
    let body = response.text().await.unwrap();
    assert_eq!(status, StatusCode::OK, "{path} reached the app: {body}");
    let echoed: Value = serde_json::from_str(&body).unwrap();
    let principal = echoed["headers"]["x-ms-client-principal"][0].as_str().expect("the principal").to_owned();
    (echoed, principal)
}

#[tokio::test]
async fn a_user_in_too_many_groups_to_list_in_a_header_gets_entras_overage_claim_instead() {
    let (_upstream, _nginx, app) = behind_nginx(|_| {}).await;
    app.sign_in_adele().await;
    let (_, principal) = through(&app, "/reports").await;
    assert!(principal.len() <= 8000, "{} bytes", principal.len());
    let principal = decoded(&principal);
    assert_eq!(claim_values(&principal, "groups"), Vec::<String>::new(), "no partial list");
    // Entra's own overage shape, pointing at Microsoft Graph, where the app can read them all.
    let names: Value = serde_json::from_str(&claim_values(&principal, "_claim_names")[0]).unwrap();
    assert_eq!(names, serde_json::json!({ "groups": "src1" }));
    let sources: Value = serde_json::from_str(&claim_values(&principal, "_claim_sources")[0]).unwrap();
    let oid = app.emulator.user_object_id(ADELE).unwrap();
    assert_eq!(
        sources["src1"]["endpoint"],
        format!("{}/v1.0/users/{oid}/transitiveMemberOf", app.emulator.graph_endpoint())
    );
    // Everything else is there as always: who she is, her roles.
    assert_eq!(claim_values(&principal, "oid"), vec![oid.to_string()]);
    assert_eq!(claim_values(&principal, "http://schemas.microsoft.com/ws/2008/06/identity/claims/role"), ["Reader"]);
    // /.auth/me tells the app's pages the same.
    let me: Value = app.get("/.auth/me").await.json().await.unwrap();
    assert_eq!(me[0]["user_claims"], principal["claims"]);
}

#[tokio::test]
async fn the_groups_the_app_asks_for_reach_it_whatever_else_the_user_is_in() {
    let (asked, other) = (many_groups_id(7), uuid::Uuid::from_u128(0x0bad_0000_0000_4000_8000_0000_0000_0001));
    let (_upstream, _nginx, app) =
        behind_nginx(move |settings| settings.proxy_principal_groups = Some(format!("{asked}, {other}"))).await;
    app.sign_in_adele().await;
    let (_, principal) = through(&app, "/reports").await;
    let principal = decoded(&principal);
    // Of the groups asked for, the one she is in; none of her other 150.
    assert_eq!(claim_values(&principal, "groups"), vec![asked.to_string()]);
    assert!(claim_values(&principal, "_claim_names").is_empty());
    let me: Value = app.get("/.auth/me").await.json().await.unwrap();
    assert_eq!(me[0]["user_claims"], principal["claims"]);
}
