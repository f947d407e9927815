//! `spawn_app()` and the browser steps of a sign-in.

#![allow(dead_code, reason = "each test module uses a different subset")]

use std::sync::Arc;
use std::time::Duration;

use entra_emulator::{ClientRegistration, Emulator, EmulatorConfig};
use entra_webapp::config::Settings;
use entra_webapp::startup::Application;
use reqwest::StatusCode;
use tokio::net::TcpListener;
use url::Url;

pub const ADELE: &str = "adele@emulator.test";
pub const ADELE_PASSWORD: &str = "adele-password";
pub const MALLORY: &str = "mallory@emulator.test";
pub const MALLORY_PASSWORD: &str = "mallory-password";

pub struct TestApp {
    pub emulator: Arc<Emulator>,
    /// Where this instance listens.
    pub base_url: String,
    pub browser: reqwest::Client,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    server: Option<tokio::task::JoinHandle<std::io::Result<()>>>,
}

/// Changes the emulator's configuration and the app's registration before the emulator starts.
pub type EmulatorSetup = Box<dyn FnOnce(&mut EmulatorConfig, &mut ClientRegistration) + Send>;
/// Changes the app's settings once the emulator runs.
pub type SettingsChange = Box<dyn FnOnce(&mut Settings, &Emulator) + Send>;

#[derive(Default)]
pub struct Options {
    pub pending_sign_in_lifetime: Option<Duration>,
    pub authority_host: Option<String>,
    /// Share another instance's emulator.
    pub emulator: Option<Arc<Emulator>>,
    /// The site's URL in REDIRECT_URI, when several instances serve one site.
    pub site_url: Option<String>,
    /// REDIRECT_URI is `https://localhost:<the port bound>` (cookies get `Secure`, `__Host-`).
    pub https_site: bool,
    /// Listen on this port (to restart an instance in place).
    pub port: Option<u16>,
    pub session_store: Option<String>,
    pub session_secret: Option<String>,
    pub access_token_lifetime: Option<Duration>,
    pub trust_forwarded_headers: bool,
    pub jwks_refetch_interval: Option<Duration>,
    pub server_limits: Option<entra_webapp::config::ServerLimits>,
    pub session_max_hours: Option<u64>,
    /// The emulator refuses a refresh token after its first use (Entra does not).
    pub strict_refresh_token_rotation: bool,
    pub max_sessions: Option<usize>,
    /// Shorter than SESSION_MAX_HOURS can say.
    pub session_max_lifetime: Option<Duration>,
    /// How long one call to Entra or Graph may take (15 s by default).
    pub http_timeout: Option<Duration>,
    /// Changes the emulator's configuration and the app's registration before the emulator starts.
    pub emulator_setup: Option<EmulatorSetup>,
    /// Changes the app's settings (e.g. its credential) once the emulator runs.
    pub settings_change: Option<SettingsChange>,
    /// Other applications registered in the emulator besides the app.
    pub other_clients: Vec<ClientRegistration>,
}

pub async fn spawn_app() -> TestApp {
    spawn_app_with(Options::default()).await
}

pub async fn spawn_app_with(options: Options) -> TestApp {
    let listener = TcpListener::bind(("127.0.0.1", options.port.unwrap_or(0))).await.expect("bind");
    let port = listener.local_addr().expect("addr").port();
    let base_url = format!("http://localhost:{port}");
    let site_url = match (&options.site_url, options.https_site) {
        (Some(site_url), _) => site_url.clone(),
        (None, true) => format!("https://localhost:{port}"),
        (None, false) => base_url.clone(),
    };
    let mut client = ClientRegistration {
        redirect_uris: vec![format!("{site_url}/callback"), format!("{site_url}/")],
        ..ClientRegistration::default()
    };
    let emulator = match options.emulator {
        Some(emulator) => emulator,
        None => {
            let mut config = EmulatorConfig::default();
            if let Some(setup) = options.emulator_setup {
                setup(&mut config, &mut client);
            }
            config.clients = vec![client.clone()];
            config.clients.extend(options.other_clients);
            if let Some(lifetime) = options.access_token_lifetime {
                config.access_token_lifetime = Some(lifetime);
            }
            config.strict_refresh_token_rotation = options.strict_refresh_token_rotation;
            Arc::new(Emulator::start(config).await.expect("emulator"))
        }
    };
    let settings = Settings {
        tenant_id: Some(emulator.tenant_id().to_string()),
        client_id: Some(client.client_id.clone()),
        client_secret: client.client_secret.clone(),
        redirect_uri: Some(format!("{site_url}/callback")),
        session_store: options.session_store.unwrap_or_else(|| "memory".to_owned()),
        session_secret: options.session_secret,
        trust_forwarded_headers: options.trust_forwarded_headers.to_string(),
        authority_host: options.authority_host.unwrap_or_else(|| emulator.base_url()),
        graph_endpoint: emulator.graph_endpoint(),
        port: port.to_string(),
        bind_address: "127.0.0.1".into(),
        session_idle_minutes: "60".into(),
        session_max_hours: options.session_max_hours.unwrap_or(24).to_string(),
        max_sessions: options.max_sessions.unwrap_or(100_000).to_string(),
        ..Settings::default()
    };
    let mut settings = settings;
    if let Some(change) = options.settings_change {
        change(&mut settings, &emulator);
    }
    let mut config = settings.validate().expect("valid settings");
    if let Some(lifetime) = options.pending_sign_in_lifetime {
        config.entra.pending_sign_in_lifetime = lifetime;
    }
    if let Some(interval) = options.jwks_refetch_interval {
        config.entra.jwks_refetch_interval = interval;
    }
    if let Some(timeout) = options.http_timeout {
        config.entra.http_timeout = timeout;
    }
    if let Some(limits) = options.server_limits {
        config.listener.server_limits = limits;
    }
    if let Some(lifetime) = options.session_max_lifetime {
        config.sessions.max_lifetime = lifetime;
    }
    let app = Application::with_listener(config, listener).expect("app builds");
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(app.run_until(async move {
        let _ = stopped.await;
    }));
    TestApp { emulator, base_url, browser: browser(), stop: Some(stop), server: Some(server) }
}

/// No test request may hang: a stuck server fails the test instead of stalling the suite.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);

/// A client that follows no redirect (each hop is looked at) and gives up after the timeout.
pub fn client_builder() -> reqwest::ClientBuilder {
    reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).timeout(REQUEST_TIMEOUT)
}

pub fn browser() -> reqwest::Client {
    client_builder().cookie_store(true).build().expect("client")
}

pub fn location(response: &reqwest::Response) -> String {
    response
        .headers()
        .get("location")
        .unwrap_or_else(|| panic!("no Location on a {} answer", response.status()))
        .to_str()
        .expect("ascii")
        .to_owned()
}

async fn home_page_says_signed_in(response: reqwest::Response) -> bool {
    assert_eq!(response.status(), StatusCode::OK, "the home page answers");
    let html = response.text().await.expect("body");
    let signed_in = html.contains("id=\"welcome\"");
    assert!(signed_in != html.contains("id=\"sign-in\""), "the home page, signed in or out: {html}");
    signed_in
}

/// The `Set-Cookie` header of `response` whose cookie name starts with `prefix`.
pub fn set_cookie(response: &reqwest::Response, prefix: &str) -> Option<String> {
    response
        .headers()
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find(|c| c.starts_with(prefix))
        .map(str::to_owned)
}

/// `name=value` of a `Set-Cookie` header.
pub fn cookie_pair(set_cookie: &str) -> String {
    set_cookie.split(';').next().unwrap_or_default().to_owned()
}

pub fn hidden_input(html: &str, name: &str) -> Option<String> {
    let marker = format!("name=\"{name}\" value=\"");
    let start = html.find(&marker)? + marker.len();
    let end = html[start..].find('"')? + start;
    Some(html[start..end].to_owned())
}

impl TestApp {
    /// An app running elsewhere (another process) against `emulator`.
    pub fn external(emulator: Arc<Emulator>, base_url: String) -> TestApp {
        TestApp { emulator, base_url, browser: browser(), stop: None, server: None }
    }

    /// Another browser on the same instance.
    pub fn with_new_browser(&self) -> TestApp {
        TestApp {
            emulator: self.emulator.clone(),
            base_url: self.base_url.clone(),
            browser: browser(),
            stop: None,
            server: None,
        }
    }

    /// Stops the instance (in-flight requests finish) and frees its port.
    pub async fn stop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(server) = self.server.take() {
            let _ = server.await;
        }
    }

    pub fn port(&self) -> u16 {
        self.base_url.rsplit(':').next().and_then(|p| p.parse().ok()).expect("port")
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base_url)
    }

    pub async fn get(&self, path: &str) -> reqwest::Response {
        self.browser.get(self.url(path)).send().await.expect("request")
    }

    /// `/readyz`'s answer once the tenant's metadata has loaded (in a task started with the app,
    /// so a probe right after start-up may come first and say only that): status and text.
    pub async fn readiness(&self) -> (StatusCode, String) {
        for _ in 0..100 {
            let response = self.get("/readyz").await;
            let (status, text) = (response.status(), response.text().await.expect("body"));
            if text != "not ready: identity provider metadata not loaded" {
                return (status, text);
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!("the tenant's metadata did not load within 10 s");
    }

    pub async fn page(&self, path: &str) -> String {
        self.get(path).await.text().await.expect("body")
    }

    /// `/login` → the emulator's authorize URL.
    pub async fn start_sign_in(&self, path: &str) -> String {
        let response = self.get(path).await;
        assert_eq!(response.status(), StatusCode::SEE_OTHER, "{path} redirects to Entra");
        let authorize = location(&response);
        assert!(authorize.starts_with(&self.emulator.base_url()), "{authorize}");
        authorize
    }

    /// At the emulator, for another application: sign in and consent → where Entra sends back.
    pub async fn sign_in_at_emulator_to(&self, authorize: &str, upn: &str, password: &str, back_to: &str) -> String {
        let back = self.at_emulator(authorize, upn, password, true).await;
        assert!(back.starts_with(back_to), "{back}");
        back
    }

    /// At the emulator: sign in (and consent, accepting or not) → the callback URL Entra sends back.
    pub async fn sign_in_at_emulator(&self, authorize: &str, upn: &str, password: &str, consent: bool) -> String {
        let callback = self.at_emulator(authorize, upn, password, consent).await;
        assert!(callback.contains("/callback?"), "{callback}");
        callback
    }

    async fn at_emulator(&self, authorize: &str, upn: &str, password: &str, consent: bool) -> String {
        let page = self.browser.get(authorize).send().await.expect("authorize");
        // The tenant segment the app authorizes at (its own tenant, organizations...).
        let authority = authorize.split("/oauth2/v2.0/authorize").next().expect("an authorize URL").to_owned();
        let response = if page.status() == StatusCode::FOUND {
            page
        } else {
            let html = page.text().await.expect("html");
            let ctx = hidden_input(&html, "ctx").expect("ctx");
            let login = format!("{authority}/login");
            let response = self
                .browser
                .post(login)
                .form(&[("ctx", ctx.as_str()), ("loginfmt", upn), ("passwd", password)])
                .send()
                .await
                .expect("login");
            if response.status() == StatusCode::OK {
                let html = response.text().await.expect("html");
                let ctx = hidden_input(&html, "ctx").expect("consent ctx");
                let accept = if consent { "true" } else { "false" };
                self.browser
                    .post(format!("{authority}/consent"))
                    .form(&[("ctx", ctx.as_str()), ("accept", accept)])
                    .send()
                    .await
                    .expect("consent")
            } else {
                response
            }
        };
        assert_eq!(response.status(), StatusCode::FOUND, "the emulator sends the browser back");
        location(&response)
    }

    /// The whole dance; returns the app's answer to the callback.
    pub async fn sign_in(&self, upn: &str, password: &str) -> reqwest::Response {
        let authorize = self.start_sign_in("/login").await;
        let callback = self.sign_in_at_emulator(&authorize, upn, password, true).await;
        self.browser.get(callback).send().await.expect("callback")
    }

    pub async fn sign_in_adele(&self) {
        let response = self.sign_in(ADELE, ADELE_PASSWORD).await;
        assert_eq!(response.status(), StatusCode::SEE_OTHER, "signed in");
        assert_eq!(location(&response), "/");
    }

    /// Whether this browser is signed in, by the home page: it must answer 200 with either the
    /// welcome or the sign-in button (an error page is neither signed in nor signed out).
    pub async fn is_signed_in(&self) -> bool {
        home_page_says_signed_in(self.get("/").await).await
    }

    /// Whether a request carrying exactly this cookie (`session=...`) is signed in; asserts the
    /// home page answered (a 5xx is not "signed out").
    pub async fn is_signed_in_with(&self, cookie: &str) -> bool {
        home_page_says_signed_in(browser().get(self.url("/")).header("cookie", cookie).send().await.expect("request"))
            .await
    }

    /// Signs Adele in; returns the session cookie (`session=...`).
    pub async fn sign_in_adele_keeping_cookie(&self) -> String {
        let response = self.sign_in(ADELE, ADELE_PASSWORD).await;
        assert_eq!(response.status(), StatusCode::SEE_OTHER, "signed in");
        cookie_pair(&set_cookie(&response, "session=").expect("a session cookie"))
    }

    /// Signs in, then signs out of Entra elsewhere (the emulator's logout endpoint, as another
    /// app would): Entra calls our front-channel logout URL and the session must end.
    pub async fn assert_front_channel_logout_ends_the_session(&self) {
        self.register_front_channel_logout_url();
        self.sign_in_adele().await;
        assert!(self.is_signed_in().await);
        let logout = format!("{}/oauth2/v2.0/logout", self.emulator.authority());
        let frames = self.sign_out_of_entra_loading_frames(&logout).await;
        assert_eq!(frames, vec![StatusCode::OK], "Entra's signed-out page framed our front-channel logout URL once");
        assert!(!self.is_signed_in().await, "front-channel logout ended the app's session");
    }

    /// Registers this app's `/logout` as the front-channel logout URL of the emulator's client.
    pub fn register_front_channel_logout_url(&self) {
        let client_id = entra_emulator::DEFAULT_CLIENT_ID.to_string();
        let logout_url = self.url("/logout");
        assert!(self.emulator.update_client(&client_id, |c| c.front_channel_logout_url = Some(logout_url)));
    }

    /// Signs out at Entra's logout URL and loads the front-channel logout iframes of its
    /// signed-out page, as a browser does (without the cookies: they are cross-site there).
    /// Returns each frame's status.
    pub async fn sign_out_of_entra_loading_frames(&self, logout_url: &str) -> Vec<StatusCode> {
        let page = self.browser.get(logout_url).send().await.expect("Entra logout");
        assert_eq!(page.status(), StatusCode::OK, "the signed-out page");
        let html = page.text().await.expect("html");
        let mut statuses = Vec::new();
        for src in iframe_sources(&html) {
            statuses.push(browser().get(&src).send().await.expect("frame").status());
        }
        statuses
    }

    pub async fn csrf_token(&self) -> String {
        hidden_input(&self.page("/logout").await, "csrf_token").expect("csrf token on the sign-out page")
    }

    /// Signs out with the button of the confirmation page at `confirmation` (its form's fields
    /// posted), then goes where Entra sends the browser back (the callback, `/callback` unless the
    /// app's redirect URI says otherwise: see [`Self::sign_out_landing_at`]): returns where that
    /// landing sends it on.
    pub async fn sign_out_from(&self, confirmation: &str) -> String {
        self.sign_out_landing_at(confirmation, "/callback").await
    }

    /// [`Self::sign_out_from`] for an app whose callback is at `callback`.
    pub async fn sign_out_landing_at(&self, confirmation: &str, callback: &str) -> String {
        let page = self.page(confirmation).await;
        let mut fields = vec![("csrf_token", hidden_input(&page, "csrf_token").expect("a sign-out form"))];
        fields.extend(hidden_input(&page, "return_to").map(|return_to| ("return_to", return_to)));
        let action = form_action(&page).expect("a form that posts");
        let response = self.browser.post(self.url(&action)).form(&fields).send().await.unwrap();
        let end_session = location(&response);
        assert!(end_session.starts_with(&self.emulator.base_url()), "{end_session}");
        let back = self.browser.get(&end_session).send().await.unwrap();
        let landing = location(&back);
        assert_eq!(landing, self.url(callback), "Entra sends the browser back to the callback");
        location(&self.browser.get(&landing).send().await.unwrap())
    }

    /// Signs out as the sign-out page's button does (its CSRF token posted); returns the answer.
    pub async fn sign_out(&self) -> reqwest::Response {
        let csrf = self.csrf_token().await;
        self.browser.post(self.url("/logout")).form(&[("csrf_token", csrf.as_str())]).send().await.unwrap()
    }
}

/// Where the first form of a page posts (its `action`).
pub fn form_action(html: &str) -> Option<String> {
    let form = &html[html.find("<form")?..];
    let start = form.find("action=\"")? + 8;
    let end = form[start..].find('"')? + start;
    Some(form[start..end].to_owned())
}

/// The `src` of every iframe of a page (attribute values are HTML-escaped by the emulator).
pub fn iframe_sources(html: &str) -> Vec<String> {
    html.split("<iframe")
        .skip(1)
        .filter_map(|tag| {
            let start = tag.find("src=\"")? + 5;
            let end = tag[start..].find('"')? + start;
            Some(
                tag[start..end]
                    .replace("&amp;", "&")
                    .replace("&#38;", "&")
                    .replace("&#x2f;", "/")
                    .replace("&#47;", "/"),
            )
        })
        .collect()
}

pub fn query_param(url: &str, name: &str) -> Option<String> {
    Url::parse(url).ok()?.query_pairs().find(|(k, _)| k == name).map(|(_, v)| v.into_owned())
}

pub fn with_query_param(url: &str, name: &str, value: &str) -> String {
    let mut parsed = Url::parse(url).expect("url");
    let pairs: Vec<(String, String)> = parsed
        .query_pairs()
        .map(|(k, v)| if k == name { (k.into_owned(), value.to_owned()) } else { (k.into_owned(), v.into_owned()) })
        .collect();
    parsed.query_pairs_mut().clear().extend_pairs(pairs);
    parsed.to_string()
}

/// Changes the emulator's directory through its admin API (`PUT /_emulator{path}`).
pub async fn admin_put(app: &TestApp, path: &str, body: serde_json::Value) {
    let url = format!("{}/_emulator{path}", app.emulator.base_url());
    let response = browser().put(url).json(&body).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::NO_CONTENT);
}

/// The id of the `n`th of the groups [`adele_in_many_groups`] adds.
pub fn many_groups_id(n: usize) -> uuid::Uuid {
    uuid::Uuid::from_u128(0x9a0c_0000_0000_4000_8000_0000_0000_0000 + n as u128)
}

/// Adele in `count` more security groups (Sales too, as always), which ID tokens carry up to
/// Entra's 200: more than the usual 8 KB limit on one request header takes, spelt out.
pub fn adele_in_many_groups(count: usize) -> EmulatorSetup {
    Box::new(move |config, _| {
        let groups: Vec<uuid::Uuid> = (0..count).map(many_groups_id).collect();
        config.groups.extend(groups.iter().map(|id| entra_emulator::Group {
            id: *id,
            display_name: format!("Project {id}"),
            security_enabled: true,
        }));
        let adele = config.users.iter_mut().find(|user| user.user_principal_name == ADELE).expect("Adele");
        adele.groups.extend(groups);
    })
}

/// Another application, a public client (a desktop app or CLI: no secret, PKCE), that calls the
/// app as an API.
pub fn calling_app(client_id: &str) -> ClientRegistration {
    ClientRegistration {
        client_id: client_id.to_owned(),
        client_secret: None,
        redirect_uris: Vec::new(),
        public_client_redirect_uris: vec!["http://localhost".to_owned()],
        display_name: format!("calling app {client_id}"),
        ..ClientRegistration::default()
    }
}

/// An access token `caller` (a [`calling_app`]) gets for `scope` with `upn` signed in to it: the
/// authorization code flow with PKCE at the emulator, as MSAL runs it.
pub async fn access_token_of(app: &TestApp, caller: &str, upn: &str, password: &str, scope: &str) -> String {
    use base64::Engine;
    use sha2::Digest;
    let verifier = format!("{}{}", uuid::Uuid::new_v4().simple(), uuid::Uuid::new_v4().simple());
    let challenge = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(sha2::Sha256::digest(&verifier));
    let redirect_uri = "http://localhost:1/";
    let mut authorize = Url::parse(&format!("{}/oauth2/v2.0/authorize", app.emulator.authority())).unwrap();
    authorize
        .query_pairs_mut()
        .append_pair("client_id", caller)
        .append_pair("response_type", "code")
        .append_pair("redirect_uri", redirect_uri)
        .append_pair("scope", &format!("openid {scope}"))
        .append_pair("state", "s")
        .append_pair("code_challenge", &challenge)
        .append_pair("code_challenge_method", "S256");
    let own = app.with_new_browser();
    let back = own.sign_in_at_emulator_to(authorize.as_str(), upn, password, redirect_uri).await;
    let code = query_param(&back, "code").expect("a code");
    let token = browser()
        .post(format!("{}/oauth2/v2.0/token", app.emulator.authority()))
        .form(&[
            ("client_id", caller),
            ("grant_type", "authorization_code"),
            ("code", &code),
            ("redirect_uri", redirect_uri),
            ("code_verifier", &verifier),
            ("scope", &format!("openid {scope}")),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(token.status(), StatusCode::OK, "{}", token.text().await.unwrap());
    let token: serde_json::Value = token.json().await.unwrap();
    token["access_token"].as_str().expect("an access token").to_owned()
}
