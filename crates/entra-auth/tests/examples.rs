//! The crate's examples, run against the emulator over real TCP: what the README promises works.

#![allow(clippy::unwrap_used, clippy::expect_used, reason = "a failed step fails the test on the spot")]

#[path = "../examples/graph.rs"]
#[allow(dead_code, reason = "the example's main is not run here; its app is")]
mod graph;
#[path = "../examples/minimal.rs"]
#[allow(dead_code, reason = "the example's main is not run here; its app is")]
mod minimal;

mod support;

use reqwest::StatusCode;
use support::{hidden_input, location, serve};

#[tokio::test]
async fn minimal_example_protects_a_page_and_welcomes_the_signed_in_user() {
    let running = serve(minimal::app).await;
    let home = running.get(&format!("{}/", running.app_url)).await;
    assert_eq!(home.text().await.unwrap(), "Hello. Visit /private to sign in.");

    let anonymous_report = running.get(&format!("{}/reports/latest", running.app_url)).await;
    assert_eq!(anonymous_report.status(), StatusCode::SEE_OTHER, "require_sign_in guards the router");
    assert_eq!(location(&anonymous_report), "/login?return_to=%2Freports%2Flatest");

    let (status, page) = running.visit_signing_in("/private").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(page, "Welcome Adele Vance (adele@emulator.test)");
    let report = running.get(&format!("{}/reports/latest", running.app_url)).await;
    assert_eq!(report.text().await.unwrap(), "The latest report", "signed in: the guarded router answers");

    // Sign out through the default confirmation form; the session is gone afterwards.
    let form = running.get(&format!("{}/logout", running.app_url)).await.text().await.unwrap();
    let csrf_token = hidden_input(&form, "csrf_token");
    let signed_out = running
        .browser
        .post(format!("{}/logout", running.app_url))
        .form(&[("csrf_token", csrf_token.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(signed_out.status(), StatusCode::SEE_OTHER);
    assert!(location(&signed_out).starts_with(&running.emulator.authority()), "on to Entra's sign-out");
    let again = running.get(&format!("{}/private", running.app_url)).await;
    assert_eq!(again.status(), StatusCode::SEE_OTHER, "signed out: sign-in is required again");
}

#[tokio::test]
async fn graph_example_calls_graph_with_the_users_token() {
    let running = serve(graph::app).await;
    let (status, page) = running.visit_signing_in("/me").await;
    assert_eq!(status, StatusCode::OK, "{page}");
    assert_eq!(page, "Graph says you are Adele Vance <adele.vance@emulator.test>");
    assert!(running.emulator.graph_requests_received() >= 1, "the page really asked Graph");
}
