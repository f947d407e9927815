//! What the tests of entra-auth's axum pieces share: an app on loopback against the emulator,
//! and a browser-like client that signs in through the emulator's pages.

#![allow(dead_code, reason = "each test binary uses a different subset")]
#![allow(unreachable_pub, reason = "items of integration-test modules are crate-private by nature")]

use std::time::Duration;

use axum::Router;
use entra_auth::{Authority, EntraConfig};
use entra_emulator::{ClientRegistration, Emulator, EmulatorConfig};
use reqwest::StatusCode;
use secrecy::SecretString;
use tokio::net::TcpListener;

pub const ADELE: &str = "adele@emulator.test";

/// An example app served on loopback, its emulator, and a browser-like client (cookies, no
/// automatic redirects).
pub struct Running {
    pub app_url: String,
    pub emulator: Emulator,
    pub browser: reqwest::Client,
}

pub async fn serve(make_app: impl FnOnce(EntraConfig) -> Result<Router, reqwest::Error>) -> Running {
    serve_with(make_app, |_| {}).await
}

/// [`serve`], with the emulator's configuration changed first.
pub async fn serve_with(
    make_app: impl FnOnce(EntraConfig) -> Result<Router, reqwest::Error>,
    change_emulator: impl FnOnce(&mut EmulatorConfig),
) -> Running {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    // `localhost` for the app and 127.0.0.1 for the emulator keep their cookies apart.
    let app_url = format!("http://localhost:{}", listener.local_addr().unwrap().port());
    let registration = ClientRegistration {
        redirect_uris: vec![format!("{app_url}/callback"), format!("{app_url}/")],
        ..ClientRegistration::default()
    };
    let mut emulator_config = EmulatorConfig { clients: vec![registration.clone()], ..EmulatorConfig::default() };
    change_emulator(&mut emulator_config);
    let emulator = Emulator::start(emulator_config).await.unwrap();
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

pub fn location(response: &reqwest::Response) -> String {
    response.headers().get("location").expect("a redirect").to_str().unwrap().to_owned()
}

pub fn hidden_input(html: &str, name: &str) -> String {
    let marker = format!("name=\"{name}\" value=\"");
    let start = html.find(&marker).expect("the hidden input") + marker.len();
    let end = html[start..].find('"').unwrap() + start;
    html[start..end].to_owned()
}

impl Running {
    pub async fn get(&self, url: &str) -> reqwest::Response {
        self.browser.get(url).send().await.unwrap()
    }

    /// Opens `path` anonymously, follows the app to sign-in, signs in at the emulator as Adele
    /// (consenting), and follows the callback back; returns the page finally shown.
    pub async fn visit_signing_in(&self, path: &str) -> (StatusCode, String) {
        self.visit_signing_in_at(path, "/login").await
    }

    /// The same, with sign-in served at `login_path`.
    pub async fn visit_signing_in_at(&self, path: &str, login_path: &str) -> (StatusCode, String) {
        let signed_in = self.sign_in_from(path, login_path).await;
        assert_eq!(signed_in.status(), StatusCode::SEE_OTHER);
        assert_eq!(location(&signed_in), path, "back where the visitor was going");
        let page = self.get(&format!("{}{path}", self.app_url)).await;
        (page.status(), page.text().await.unwrap())
    }

    /// Opens `path` anonymously and signs in as Adele; returns the app's answer to the callback.
    pub async fn sign_in_from(&self, path: &str, login_path: &str) -> reqwest::Response {
        let first = self.get(&format!("{}{path}", self.app_url)).await;
        assert_eq!(first.status(), StatusCode::SEE_OTHER, "anonymous: sent to sign in");
        let login = location(&first);
        assert!(login.starts_with(&format!("{login_path}?return_to=")), "{login}");
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
        self.get(&callback).await
    }
}
