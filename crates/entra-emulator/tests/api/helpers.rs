//! Shared arrange steps: start an emulator, run the authorize dance as a browser would.

#![allow(dead_code, reason = "each test module uses a different subset")]

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use entra_emulator::{DEFAULT_CLIENT_ID, DEFAULT_CLIENT_SECRET, Emulator, EmulatorConfig};
use reqwest::StatusCode;
use serde_json::Value;
use sha2::{Digest, Sha256};
use url::Url;

pub const REDIRECT_URI: &str = "http://localhost:5001/callback";
pub const ADELE: &str = "adele@emulator.test";
pub const ADELE_PASSWORD: &str = "adele-password";
pub const MALLORY: &str = "mallory@emulator.test";

pub async fn emulator() -> Emulator {
    Emulator::start(EmulatorConfig::default()).await.expect("emulator starts")
}

pub async fn emulator_with(change: impl FnOnce(&mut EmulatorConfig)) -> Emulator {
    let mut config = EmulatorConfig::default();
    change(&mut config);
    Emulator::start(config).await.expect("emulator starts")
}

/// A browser: keeps cookies, never follows redirects (tests look at each hop).
/// No test request may hang: a stuck server fails the test instead of stalling the suite.
pub const REQUEST_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(30);

pub fn browser() -> reqwest::Client {
    reqwest::Client::builder()
        .cookie_store(true)
        .redirect(reqwest::redirect::Policy::none())
        .timeout(REQUEST_TIMEOUT)
        .build()
        .expect("client builds")
}

/// A plain client (no cookies, default redirects), with the timeout.
pub fn http() -> reqwest::Client {
    reqwest::Client::builder().timeout(REQUEST_TIMEOUT).build().expect("client builds")
}

pub fn client_id() -> String {
    DEFAULT_CLIENT_ID.to_string()
}

/// A PKCE pair (verifier, S256 challenge).
pub fn pkce() -> (String, String) {
    let verifier = URL_SAFE_NO_PAD.encode(rand_bytes());
    let challenge = URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes()));
    (verifier, challenge)
}

fn rand_bytes() -> [u8; 32] {
    let mut bytes = [0u8; 32];
    for (i, b) in bytes.iter_mut().enumerate() {
        *b = (uuid::Uuid::new_v4().as_bytes()[i % 16]) ^ (i as u8);
    }
    bytes
}

/// An /authorize request with sensible defaults; tests override parameters.
pub struct AuthorizeRequest {
    pub params: Vec<(String, String)>,
    pub verifier: String,
    /// The `{tenant}` segment to authorize at, when not the emulator's own tenant.
    pub tenant: Option<String>,
}

impl AuthorizeRequest {
    pub fn new() -> Self {
        let (verifier, challenge) = pkce();
        let params = [
            ("client_id", client_id()),
            ("response_type", "code".to_owned()),
            ("redirect_uri", REDIRECT_URI.to_owned()),
            ("scope", "openid profile offline_access User.Read".to_owned()),
            ("state", "state-123".to_owned()),
            ("nonce", "nonce-456".to_owned()),
            ("code_challenge", challenge),
            ("code_challenge_method", "S256".to_owned()),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v))
        .collect();
        Self { params, verifier, tenant: None }
    }

    /// Authorizes at `/{tenant}` (`common`, another tenant's id) instead of the emulator's tenant.
    pub fn at_tenant(mut self, tenant: &str) -> Self {
        self.tenant = Some(tenant.to_owned());
        self
    }

    pub fn authority(&self, emulator: &Emulator) -> String {
        match &self.tenant {
            Some(tenant) => authority_at(emulator, tenant),
            None => emulator.authority().to_string(),
        }
    }

    pub fn set(mut self, name: &str, value: &str) -> Self {
        self.params.retain(|(k, _)| k != name);
        self.params.push((name.to_owned(), value.to_owned()));
        self
    }

    pub fn without(mut self, name: &str) -> Self {
        self.params.retain(|(k, _)| k != name);
        self
    }

    pub fn url(&self, emulator: &Emulator) -> Url {
        let mut url = Url::parse(&format!("{}/oauth2/v2.0/authorize", self.authority(emulator))).expect("url");
        url.query_pairs_mut().extend_pairs(&self.params);
        url
    }
}

/// The authority URL of another `{tenant}` segment of this emulator.
pub fn authority_at(emulator: &Emulator, tenant: &str) -> String {
    format!("{}/{tenant}", emulator.base_url())
}

/// The value of a hidden input in an HTML page.
pub fn hidden_input(html: &str, name: &str) -> Option<String> {
    let marker = format!("name=\"{name}\" value=\"");
    let start = html.find(&marker)? + marker.len();
    let end = html[start..].find('"')? + start;
    Some(html[start..end].replace("&#x2f;", "/").replace("&#43;", "+").replace("&#61;", "="))
}

/// Posts a form the emulator served (sign-in or consent) back to it.
pub async fn post_form(browser: &reqwest::Client, url: &str, form: &[(&str, &str)]) -> reqwest::Response {
    browser.post(url).form(form).send().await.expect("form post")
}

/// Runs sign-in (and consent when asked) and returns the final response: the redirect to the app.
pub async fn sign_in_as(
    browser: &reqwest::Client,
    emulator: &Emulator,
    request: &AuthorizeRequest,
    upn: &str,
    password: &str,
) -> reqwest::Response {
    let page = browser.get(request.url(emulator)).send().await.expect("authorize");
    if page.status() == StatusCode::FOUND {
        return page;
    }
    assert_eq!(page.status(), StatusCode::OK, "authorize shows the sign-in page");
    let html = page.text().await.expect("html");
    let ctx = hidden_input(&html, "ctx").expect("ctx in sign-in page");
    let login_url = format!("{}/login", request.authority(emulator));
    let response = post_form(browser, &login_url, &[("ctx", &ctx), ("loginfmt", upn), ("passwd", password)]).await;
    accept_consent_if_asked(browser, emulator, response).await
}

pub async fn accept_consent_if_asked(
    browser: &reqwest::Client,
    emulator: &Emulator,
    response: reqwest::Response,
) -> reqwest::Response {
    if response.status() != StatusCode::OK {
        return response;
    }
    let html = response.text().await.expect("html");
    assert!(html.contains("idBtn_Accept"), "expected the consent page, got: {html}");
    let ctx = hidden_input(&html, "ctx").expect("ctx in consent page");
    let consent_url = format!("{}/consent", emulator.authority());
    post_form(browser, &consent_url, &[("ctx", &ctx), ("accept", "true")]).await
}

pub fn location(response: &reqwest::Response) -> Url {
    let location = response.headers().get("location").expect("a Location header").to_str().expect("ascii");
    Url::parse(location).expect("absolute Location")
}

pub fn query_param(url: &Url, name: &str) -> Option<String> {
    url.query_pairs().find(|(k, _)| k == name).map(|(_, v)| v.into_owned())
}

/// Signs Adele in and returns (code, PKCE verifier).
pub async fn code_for_adele(browser: &reqwest::Client, emulator: &Emulator) -> (String, String) {
    let request = AuthorizeRequest::new();
    let response = sign_in_as(browser, emulator, &request, ADELE, ADELE_PASSWORD).await;
    assert_eq!(response.status(), StatusCode::FOUND, "redirect back to the app");
    let url = location(&response);
    let code = query_param(&url, "code").expect("code in redirect");
    (code, request.verifier)
}

pub fn token_url(emulator: &Emulator) -> String {
    format!("{}/oauth2/v2.0/token", emulator.authority())
}

/// A token request with client_secret_post credentials plus `extra`.
pub async fn token_request(emulator: &Emulator, extra: &[(&str, &str)]) -> (StatusCode, Value) {
    token_request_at(&emulator.authority(), extra).await
}

/// The same, at another authority (`{base}/organizations`...): codes redeem where they were made.
pub async fn token_request_at(authority: &str, extra: &[(&str, &str)]) -> (StatusCode, Value) {
    let client_id = client_id();
    let mut form: Vec<(&str, &str)> = vec![("client_id", &client_id), ("client_secret", DEFAULT_CLIENT_SECRET)];
    form.extend_from_slice(extra);
    let url = format!("{authority}/oauth2/v2.0/token");
    let response = http().post(url).form(&form).send().await.expect("token request");
    let status = response.status();
    (status, response.json().await.expect("token endpoint answers JSON"))
}

pub async fn redeem(emulator: &Emulator, code: &str, verifier: &str) -> (StatusCode, Value) {
    token_request(
        emulator,
        &[
            ("grant_type", "authorization_code"),
            ("code", code),
            ("redirect_uri", REDIRECT_URI),
            ("code_verifier", verifier),
            ("scope", "openid profile offline_access User.Read"),
        ],
    )
    .await
}

/// Asserts Entra's error shape and returns the AADSTS codes.
pub fn assert_entra_error(body: &Value, error: &str, code: u64) {
    assert_eq!(body["error"], error, "error in {body}");
    assert_eq!(body["error_codes"][0], code, "error_codes in {body}");
    let description = body["error_description"].as_str().expect("error_description");
    assert!(description.starts_with(&format!("AADSTS{code}:")), "{description}");
    for field in ["timestamp", "trace_id", "correlation_id"] {
        assert!(body[field].is_string(), "{field} in {body}");
    }
}

/// Decodes a JWT's payload without verifying (for looking at claims in tests).
pub fn claims_of(jwt: &str) -> Value {
    let payload = jwt.split('.').nth(1).expect("three parts");
    serde_json::from_slice(&URL_SAFE_NO_PAD.decode(payload).expect("base64url")).expect("json")
}

pub fn header_of(jwt: &str) -> Value {
    let header = jwt.split('.').next().expect("header");
    serde_json::from_slice(&URL_SAFE_NO_PAD.decode(header).expect("base64url")).expect("json")
}
