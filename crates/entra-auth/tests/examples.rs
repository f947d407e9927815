//! The crate's examples, run against the emulator over real TCP: what the README promises works.

#![allow(clippy::unwrap_used, clippy::expect_used, reason = "a failed step fails the test on the spot")]

#[path = "../examples/graph.rs"]
#[allow(dead_code, reason = "the example's main is not run here; its app is")]
mod graph;
#[path = "../examples/minimal.rs"]
#[allow(dead_code, reason = "the example's main is not run here; its app is")]
mod minimal;

use std::time::Duration;

use axum::Router;
use entra_auth::{Authority, EntraConfig};
use entra_emulator::{ClientRegistration, Emulator, EmulatorConfig};
use reqwest::StatusCode;
use secrecy::SecretString;
use tokio::net::TcpListener;

const ADELE: &str = "adele@emulator.test";

/// An example app served on loopback, its emulator, and a browser-like client (cookies, no
/// automatic redirects).
struct Running {
    app_url: String,
    emulator: Emulator,
    browser: reqwest::Client,
}

async fn serve(make_app: fn(EntraConfig) -> Result<Router, reqwest::Error>) -> Running {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    // `localhost` for the app and 127.0.0.1 for the emulator keep their cookies apart.
    let app_url = format!("http://localhost:{}", listener.local_addr().unwrap().port());
    let registration = ClientRegistration {
        redirect_uris: vec![format!("{app_url}/callback")],
        post_logout_redirect_uris: vec![format!("{app_url}/")],
        ..ClientRegistration::default()
    };
    let emulator = Emulator::start(EmulatorConfig { clients: vec![registration.clone()], ..EmulatorConfig::default() })
        .await
        .unwrap();
    let config = EntraConfig::new(
        Authority::new(emulator.base_url().parse().unwrap(), emulator.tenant_id().to_string().parse().unwrap()),
        registration.client_id,
        SecretString::from(registration.client_secret.unwrap()),
        format!("{app_url}/callback").parse().unwrap(),
    )
    .with_graph_endpoint(emulator.graph_endpoint().parse().unwrap());
    let app = make_app(config).unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await });
    let browser = reqwest::Client::builder()
        .cookie_store(true)
        .redirect(reqwest::redirect::Policy::none())
        .timeout(Duration::from_secs(30))
        .build()
        .unwrap();
    Running { app_url, emulator, browser }
}

fn location(response: &reqwest::Response) -> String {
    response.headers().get("location").expect("a redirect").to_str().unwrap().to_owned()
}

fn hidden_input(html: &str, name: &str) -> String {
    let marker = format!("name=\"{name}\" value=\"");
    let start = html.find(&marker).expect("the hidden input") + marker.len();
    let end = html[start..].find('"').unwrap() + start;
    html[start..end].to_owned()
}

impl Running {
    async fn get(&self, url: &str) -> reqwest::Response {
        self.browser.get(url).send().await.unwrap()
    }

    /// Opens `path` anonymously, follows the app to sign-in, signs in at the emulator as Adele
    /// (consenting), and follows the callback back; returns the page finally shown.
    async fn visit_signing_in(&self, path: &str) -> (StatusCode, String) {
        let first = self.get(&format!("{}{path}", self.app_url)).await;
        assert_eq!(first.status(), StatusCode::SEE_OTHER, "anonymous: sent to sign in");
        let login = location(&first);
        assert!(login.starts_with("/login?return_to="), "{login}");
        let authorize = location(&self.get(&format!("{}{login}", self.app_url)).await);
        assert!(authorize.starts_with(&self.emulator.authority()), "{authorize}");
        let form = self.get(&authorize).await.text().await.unwrap();
        let password = self.emulator.users().into_iter().find(|u| u.user_principal_name == ADELE).unwrap().password;
        let signed_in_at_entra = self
            .browser
            .post(format!("{}/login", self.emulator.authority()))
            .form(&[("ctx", hidden_input(&form, "ctx").as_str()), ("loginfmt", ADELE), ("passwd", &password)])
            .send()
            .await
            .unwrap();
        // The emulator asks for consent the first time a user meets an app's permissions.
        let back = match signed_in_at_entra.status() {
            StatusCode::OK => {
                let consent = signed_in_at_entra.text().await.unwrap();
                self.browser
                    .post(format!("{}/consent", self.emulator.authority()))
                    .form(&[("ctx", hidden_input(&consent, "ctx").as_str()), ("accept", "true")])
                    .send()
                    .await
                    .unwrap()
            }
            _ => signed_in_at_entra,
        };
        let callback = location(&back);
        assert!(callback.starts_with(&format!("{}/callback?", self.app_url)), "{callback}");
        let signed_in = self.get(&callback).await;
        assert_eq!(signed_in.status(), StatusCode::SEE_OTHER);
        assert_eq!(location(&signed_in), path, "back where the visitor was going");
        let page = self.get(&format!("{}{path}", self.app_url)).await;
        (page.status(), page.text().await.unwrap())
    }
}

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
