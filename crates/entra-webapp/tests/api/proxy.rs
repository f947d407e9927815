//! Proxy mode over TCP: the emulator, the app as a proxy, and an upstream of our own that says
//! what reached it.

use base64::Engine;
use futures::{SinkExt, StreamExt};
use reqwest::StatusCode;
use serde_json::Value;

use crate::helpers::*;
use crate::upstream::{self, Upstream};

const HTML: &str = "text/html,application/xhtml+xml";

/// The app in front of `upstream`, with extra settings.
pub(crate) async fn proxy_with(
    upstream: &Upstream,
    change: impl FnOnce(&mut entra_webapp::config::Settings) + Send + 'static,
) -> TestApp {
    proxy_with_options(upstream, change, Options::default()).await
}

/// Access tokens live this long in the tests that wait for a refresh.
const SHORT_TOKEN_LIFETIME: std::time::Duration = std::time::Duration::from_secs(2);

/// The app in front of `upstream`, with extra settings, its access tokens due for a refresh
/// within a second of being issued.
async fn proxy_with_short_tokens(
    upstream: &Upstream,
    change: impl FnOnce(&mut entra_webapp::config::Settings) + Send + 'static,
) -> TestApp {
    proxy_with_options(
        upstream,
        change,
        Options { access_token_lifetime: Some(SHORT_TOKEN_LIFETIME), ..Options::default() },
    )
    .await
}

pub(crate) async fn proxy_with_options(
    upstream: &Upstream,
    change: impl FnOnce(&mut entra_webapp::config::Settings) + Send + 'static,
    options: Options,
) -> TestApp {
    let url = upstream.url.clone();
    spawn_app_with(Options {
        settings_change: Some(Box::new(move |settings, _| {
            settings.upstream_url = Some(url);
            change(settings);
        })),
        ..options
    })
    .await
}

pub(crate) async fn echo(app: &TestApp, path: &str, headers: &[(&str, &str)]) -> Value {
    let mut request = app.browser.get(app.url(path));
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    let response = request.send().await.unwrap();
    assert_eq!(response.status(), StatusCode::OK, "{path} reached the upstream");
    response.json().await.unwrap()
}

pub(crate) fn header<'a>(echoed: &'a Value, name: &str) -> Option<&'a str> {
    echoed["headers"][name][0].as_str()
}

fn principal(echoed: &Value) -> Value {
    let encoded = header(echoed, "x-ms-client-principal").expect("the principal header");
    serde_json::from_slice(&base64::engine::general_purpose::STANDARD.decode(encoded).unwrap()).unwrap()
}

fn claim_values(principal: &Value, typ: &str) -> Vec<String> {
    principal["claims"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|claim| claim["typ"] == typ)
        .map(|claim| claim["val"].as_str().unwrap().to_owned())
        .collect()
}

#[tokio::test]
async fn a_signed_in_user_reaches_the_upstream_with_easy_auth_identity_headers() {
    let upstream = upstream::start().await;
    let app = proxy_with(&upstream, |_| {}).await;
    app.sign_in_adele().await;
    let echoed = echo(&app, "/reports?q=1", &[("accept", HTML)]).await;
    assert_eq!(echoed["path"], "/reports");
    assert_eq!(echoed["query"], "q=1");
    let oid = app.emulator.user_object_id(ADELE).unwrap().to_string();
    assert_eq!(header(&echoed, "x-ms-client-principal-id"), Some(oid.as_str()));
    assert_eq!(header(&echoed, "x-ms-client-principal-name"), Some(ADELE));
    assert_eq!(header(&echoed, "x-ms-client-principal-idp"), Some("aad"));
    assert_eq!(header(&echoed, "x-forwarded-user"), Some(ADELE));
    assert_eq!(header(&echoed, "x-forwarded-email"), Some("adele.vance@emulator.test"));
    let principal = principal(&echoed);
    assert_eq!(principal["auth_typ"], "aad");
    assert_eq!(principal["name_typ"], "http://schemas.xmlsoap.org/ws/2005/05/identity/claims/emailaddress");
    assert_eq!(principal["role_typ"], "http://schemas.microsoft.com/ws/2008/06/identity/claims/role");
    assert_eq!(claim_values(&principal, "http://schemas.microsoft.com/identity/claims/objectidentifier"), vec![oid]);
    assert_eq!(
        claim_values(&principal, "http://schemas.microsoft.com/ws/2008/06/identity/claims/role"),
        vec!["Reader"]
    );
    assert_eq!(claim_values(&principal, "groups"), vec![entra_emulator::SALES_GROUP_ID.to_string()]);
    assert_eq!(claim_values(&principal, "name"), vec!["Adele Vance"]);
    // The request as the client made it: its Host, the forwarding chain, no token by default.
    let host = app.base_url.trim_start_matches("http://");
    assert_eq!(header(&echoed, "host"), Some(host));
    assert_eq!(header(&echoed, "x-forwarded-host"), Some(host));
    assert_eq!(header(&echoed, "x-forwarded-for"), Some("127.0.0.1"));
    assert_eq!(header(&echoed, "x-forwarded-proto"), Some("http"));
    assert!(header(&echoed, "x-ms-token-aad-access-token").is_none());
}

#[tokio::test]
async fn tokens_reach_the_upstream_only_when_asked_for() {
    let upstream = upstream::start().await;
    let app = proxy_with(&upstream, |settings| settings.proxy_pass_tokens = "true".into()).await;
    app.sign_in_adele().await;
    let echoed = echo(&app, "/api/data", &[]).await;
    let access_token = header(&echoed, "x-ms-token-aad-access-token").expect("the access token");
    assert!(app.emulator.issued_secrets().iter().any(|issued| issued == access_token), "the session's own token");
    let id_token = header(&echoed, "x-ms-token-aad-id-token").expect("the ID token");
    assert_eq!(id_token.split('.').count(), 3);

    // Forward auth answers the browser too (in proxy mode nothing stops a page's script from
    // fetching `/.auth/verify`): it gives the identity, never a token.
    let verified = app.get("/.auth/verify").await;
    assert_eq!(verified.status(), StatusCode::OK);
    assert!(verified.headers().contains_key("x-ms-client-principal-name"));
    for (name, value) in verified.headers() {
        let value = value.to_str().unwrap_or_default();
        assert!(!name.as_str().starts_with("x-ms-token-"), "{name} sent to the browser");
        assert!(!app.emulator.issued_secrets().iter().any(|secret| value.contains(secret.as_str())), "{name}");
    }
}

#[tokio::test]
async fn the_identity_headers_follow_a_change_of_groups_at_the_next_refresh() {
    let upstream = upstream::start().await;
    let app = proxy_with_short_tokens(&upstream, |_| {}).await;
    app.sign_in_adele().await;
    let groups = |echoed: &Value| claim_values(&principal(echoed), "groups");
    let sales = entra_emulator::SALES_GROUP_ID.to_string();
    // Twice: the second answer comes from the proxy's cache of built identity headers.
    for _ in 0..2 {
        assert_eq!(groups(&echo(&app, "/api/data", &[]).await), vec![sales.clone()]);
    }
    // Out of Sales (the only security group, which the groups claim carries).
    admin_put(&app, &format!("/users/{ADELE}/groups"), serde_json::json!({ "groups": [] })).await;
    tokio::time::sleep(SHORT_TOKEN_LIFETIME + std::time::Duration::from_millis(1200)).await;
    assert_eq!(groups(&echo(&app, "/api/data", &[]).await), Vec::<String>::new(), "renewed at the refresh, not cached");
}

#[tokio::test]
async fn after_a_refresh_the_upstream_gets_the_new_tokens_id_token_included() {
    let upstream = upstream::start().await;
    let app = proxy_with_short_tokens(&upstream, |settings| settings.proxy_pass_tokens = "true".into()).await;
    app.sign_in_adele().await;
    let before = echo(&app, "/api/data", &[]).await;
    tokio::time::sleep(SHORT_TOKEN_LIFETIME + std::time::Duration::from_millis(1200)).await;
    let after = echo(&app, "/api/data", &[]).await;
    let access_token = |echoed: &Value| header(echoed, "x-ms-token-aad-access-token").map(str::to_owned);
    assert!(access_token(&after).is_some() && access_token(&after) != access_token(&before), "refreshed");
    let id_token = header(&after, "x-ms-token-aad-id-token").expect("the refreshed sign-in's ID token too");
    assert_ne!(Some(id_token), header(&before, "x-ms-token-aad-id-token"), "the one the refresh brought");
}

#[tokio::test]
async fn spoofed_identity_headers_and_our_cookies_never_reach_the_upstream() {
    let upstream = upstream::start().await;
    let app = proxy_with(&upstream, |settings| settings.proxy_anonymous_paths = Some("/public/*".into())).await;
    let forged = base64::engine::general_purpose::STANDARD.encode(r#"{"auth_typ":"aad","claims":[]}"#);
    let spoofed: [(&str, &str); 6] = [
        ("x-ms-client-principal", &forged),
        ("x-ms-client-principal-name", "admin@evil.test"),
        ("X-MS-CLIENT-PRINCIPAL-ID", "00000000-0000-0000-0000-000000000000"),
        ("x-ms-token-aad-access-token", "forged"),
        ("x-forwarded-user", "admin"),
        ("x-forwarded-email", "admin@evil.test"),
    ];
    // Anonymous: nothing of the forgery arrives.
    let echoed = echo(&app, "/public/page", &spoofed).await;
    for (name, _) in spoofed {
        assert!(header(&echoed, &name.to_ascii_lowercase()).is_none(), "{name} reached the upstream: {echoed}");
    }

    // Signed in: our values replace the forged ones, and our cookies stay with us.
    let signed_in = app.sign_in(ADELE, ADELE_PASSWORD).await;
    let session = cookie_pair(&set_cookie(&signed_in, "entra-session=").expect("the proxy's session cookie"));
    let cookie_header = format!("theirs=1; {session}; entra-signin.abc=x; entra-signed-out=L2J5ZQ");
    let mut with_cookie = spoofed.to_vec();
    with_cookie.push(("cookie", &cookie_header));
    let echoed = echo(&app, "/private", &with_cookie).await;
    assert_eq!(header(&echoed, "x-ms-client-principal-name"), Some(ADELE));
    assert_eq!(echoed["headers"]["x-ms-client-principal-name"].as_array().unwrap().len(), 1);
    assert!(header(&echoed, "x-ms-token-aad-access-token").is_none());
    assert_eq!(header(&echoed, "x-forwarded-user"), Some(ADELE));
    let cookies = echoed["headers"]["cookie"].to_string();
    assert!(cookies.contains("theirs=1"), "{cookies}");
    assert!(!cookies.contains("entra-session") && !cookies.contains("entra-sign"), "{cookies}");
}

/// Underscore spellings of the headers the upstream trusts: WSGI, ASGI, Rack and PHP servers turn
/// `-` and `_` alike into `HTTP_X_MS_CLIENT_PRINCIPAL_NAME`, so to such an upstream each of these
/// *is* the header we set (oauth2-proxy's CVE-2025-64484). Then what only a proxy can say about the
/// connection: `Forwarded` (RFC 7239, honoured by Spring), `X-Real-IP`, other `X-Forwarded-*`, and
/// `X-Original-URL` (some frameworks route by it, past a path let through anonymously).
const DISGUISED: [(&str, &str); 14] = [
    ("x_ms_client_principal_name", "admin@evil.test"),
    ("X_MS_CLIENT_PRINCIPAL", "eyJhdXRoX3R5cCI6ImFhZCIsImNsYWltcyI6W119"),
    ("x-ms-client_principal-id", "00000000-0000-0000-0000-000000000000"),
    ("x_ms_token_aad_access_token", "forged"),
    ("x_forwarded_user", "admin"),
    ("X_Forwarded_Email", "admin@evil.test"),
    ("x_forwarded_for", "6.6.6.6"),
    ("x_forwarded_host", "evil.test"),
    ("x_forwarded_proto", "https"),
    ("forwarded", "for=6.6.6.6;host=evil.test;proto=https"),
    ("x-real-ip", "6.6.6.6"),
    ("x-forwarded-prefix", "//evil.test"),
    ("x-original-url", "/private"),
    ("x-rewrite-url", "/private"),
];

/// The names of the headers that reached the upstream.
fn echoed_names(echoed: &Value) -> Vec<String> {
    echoed["headers"].as_object().unwrap().keys().cloned().collect()
}

#[tokio::test]
async fn underscore_spellings_of_trusted_headers_and_connection_facts_never_reach_the_upstream() {
    let upstream = upstream::start().await;
    let app = proxy_with(&upstream, |settings| settings.proxy_anonymous_paths = Some("/public/*".into())).await;
    let host = app.base_url.trim_start_matches("http://").to_owned();
    let check = |echoed: &Value| {
        let names = echoed_names(echoed);
        let ours =
            ["x-forwarded-for", "x-forwarded-host", "x-forwarded-proto", "x-forwarded-user", "x-forwarded-email"];
        let disguised = |name: &&String| {
            name.contains('_')
                || ["forwarded", "x-real-ip", "x-original-url", "x-rewrite-url"].contains(&name.as_str())
                || (name.starts_with("x-forwarded-") && !ours.contains(&name.as_str()))
        };
        assert!(!names.iter().any(|name| disguised(&name)), "disguised headers arrived: {names:?}");
        assert_eq!(header(echoed, "x-forwarded-for"), Some("127.0.0.1"));
        assert_eq!(header(echoed, "x-forwarded-host"), Some(host.as_str()));
        assert_eq!(header(echoed, "x-forwarded-proto"), Some("http"));
    };
    // A control header with an underscore that means nothing to us passes: only disguises go.
    let mut sent = DISGUISED.to_vec();
    sent.push(("x-app_flag", "kept"));

    let anonymous = echo(&app, "/public/page", &sent).await;
    assert_eq!(header(&anonymous, "x-app_flag"), Some("kept"));
    let without_control = |echoed: &Value| {
        let mut echoed = echoed.clone();
        echoed["headers"].as_object_mut().unwrap().remove("x-app_flag");
        echoed
    };
    check(&without_control(&anonymous));
    assert!(header(&anonymous, "x-ms-client-principal-name").is_none());

    app.sign_in_adele().await;
    let signed_in = echo(&app, "/private", &sent).await;
    check(&without_control(&signed_in));
    assert_eq!(signed_in["headers"]["x-ms-client-principal-name"], serde_json::json!([ADELE]));
    assert_eq!(signed_in["headers"]["x-forwarded-user"], serde_json::json!([ADELE]));
}

#[tokio::test]
async fn headers_a_client_names_in_connection_cannot_remove_the_identity() {
    let upstream = upstream::start().await;
    let app = proxy_with(&upstream, |_| {}).await;
    app.sign_in_adele().await;
    // `Connection` lists headers to drop at the next hop (RFC 9110 §7.6.1): the proxy must drop
    // them from what the client sent, never from what it adds itself (as Fabio's CVE-2025-48865
    // did, letting a client remove the headers the upstream relies on).
    let named = "x-ms-client-principal, x-ms-client-principal-name, x-ms-client-principal-id, \
                 x-forwarded-user, x-forwarded-email, x-forwarded-for, x-forwarded-host, x-forwarded-proto, x-hop";
    let echoed = echo(&app, "/private", &[("connection", named), ("x-hop", "1")]).await;
    assert!(header(&echoed, "x-hop").is_none(), "the client's own header it named went: {echoed}");
    let oid = app.emulator.user_object_id(ADELE).unwrap().to_string();
    assert_eq!(header(&echoed, "x-ms-client-principal-id"), Some(oid.as_str()), "{echoed}");
    assert_eq!(header(&echoed, "x-ms-client-principal-name"), Some(ADELE));
    assert_eq!(principal(&echoed)["auth_typ"], "aad");
    assert_eq!(header(&echoed, "x-forwarded-user"), Some(ADELE));
    assert_eq!(header(&echoed, "x-forwarded-email"), Some("adele.vance@emulator.test"));
    assert_eq!(header(&echoed, "x-forwarded-for"), Some("127.0.0.1"));
    assert_eq!(header(&echoed, "x-forwarded-proto"), Some("http"));
    assert!(header(&echoed, "x-forwarded-host").is_some());
}

#[tokio::test]
async fn auth_me_has_easy_auths_shape_and_no_token() {
    let upstream = upstream::start().await;
    let app = proxy_with(&upstream, |_| {}).await;
    assert_eq!(app.get("/.auth/me").await.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(app.get("/.auth/refresh").await.status(), StatusCode::UNAUTHORIZED);
    app.sign_in_adele().await;
    let me: Value = app.get("/.auth/me").await.json().await.unwrap();
    let entry = &me[0];
    assert_eq!(entry["provider_name"], "aad");
    assert_eq!(entry["user_id"], ADELE);
    assert!(entry["expires_on"].is_u64());
    assert!(claim_values(&serde_json::json!({ "claims": entry["user_claims"] }), "preferred_username") == vec![ADELE]);
    assert!(entry.get("access_token").is_none() && entry.get("id_token").is_none(), "tokens stay on the server");
    let text = me.to_string();
    assert!(!app.emulator.issued_secrets().iter().any(|secret| text.contains(secret.as_str())));
    let issued = app.emulator.issued_secrets().len();
    assert_eq!(app.get("/.auth/refresh").await.status(), StatusCode::OK);
    assert!(app.emulator.issued_secrets().len() > issued, "the refresh got new tokens from Entra");

    let login = app.get("/.auth/login/aad?post_login_redirect_uri=%2Freports").await;
    assert_eq!(location(&login), "/login?return_to=%2Freports");
    let evil = app.get("/.auth/login/aad?post_login_redirect_uri=https%3A%2F%2Fevil.test%2F").await;
    assert_eq!(location(&evil), "/login?return_to=%2F", "never another site");
    // The site's own absolute URL (REDIRECT_URI's origin), and the older spelling of the parameter.
    let absolute = url::form_urlencoded::byte_serialize(app.url("/reports?week=2").as_bytes()).collect::<String>();
    let login = app.get(&format!("/.auth/login/aad?post_login_redirect_url={absolute}")).await;
    assert_eq!(location(&login), "/login?return_to=%2Freports%3Fweek%3D2");
    // Login parameters go on to our sign-in, which checks them and passes them to Entra.
    let hinted = app.get("/.auth/login/aad?domain_hint=contoso.com&prompt=select_account&login_hint=a%26b%40c.d").await;
    let sign_in = location(&hinted);
    assert_eq!(sign_in, "/login?return_to=%2F&login_hint=a%26b%40c.d&domain_hint=contoso.com&prompt=select_account");
    let authorize = app.start_sign_in(&sign_in).await;
    assert_eq!(query_param(&authorize, "domain_hint").as_deref(), Some("contoso.com"));
    assert_eq!(query_param(&authorize, "prompt").as_deref(), Some("select_account"));
    assert_eq!(query_param(&authorize, "login_hint").as_deref(), Some("a&b@c.d"));
    let bad = location(&app.get("/.auth/login/aad?prompt=none%20please").await);
    assert_eq!(app.get(&bad).await.status(), StatusCode::BAD_REQUEST, "checked by our sign-in: {bad}");
    assert_eq!(location(&app.get("/.auth/logout").await), "/logout?return_to=%2F.auth%2Flogout%2Fcomplete");
}

#[tokio::test]
async fn easy_auth_sign_out_lands_on_the_page_it_names_or_a_signed_out_page_never_on_sign_in() {
    let upstream = upstream::start().await;
    let app = proxy_with(&upstream, |_| {}).await;
    app.sign_in_adele().await;
    // By default, App Service's signed-out page (ours), not the app's root, which asks for sign-in.
    let confirmation = location(&app.get("/.auth/logout").await);
    assert_eq!(app.sign_out_from(&confirmation).await, "/.auth/logout/complete");
    let page = app.get("/.auth/logout/complete").await;
    assert_eq!(page.status(), StatusCode::OK);
    assert!(page.text().await.unwrap().contains("You are signed out"));

    app.sign_in_adele().await;
    let signed_in = app.get("/.auth/logout/complete").await;
    assert_eq!(location(&signed_in), "/logout?return_to=%2F.auth%2Flogout%2Fcomplete", "still signed in: confirm");
    let absolute = url::form_urlencoded::byte_serialize(app.url("/goodbye?from=app").as_bytes()).collect::<String>();
    for asked in ["%2Fgoodbye%3Ffrom%3Dapp", absolute.as_str()] {
        let confirmation = location(&app.get(&format!("/.auth/logout?post_logout_redirect_uri={asked}")).await);
        assert_eq!(confirmation, "/logout?return_to=%2Fgoodbye%3Ffrom%3Dapp");
        assert_eq!(app.sign_out_from(&confirmation).await, "/goodbye?from=app");
        app.sign_in_adele().await;
    }
    let elsewhere = app.get("/.auth/logout?post_logout_redirect_uri=https%3A%2F%2Fevil.example%2F").await;
    assert_eq!(location(&elsewhere), "/logout?return_to=%2F.auth%2Flogout%2Fcomplete", "never another site");
}

#[tokio::test]
async fn browsers_are_sent_to_sign_in_and_come_back_while_api_calls_get_401() {
    let upstream = upstream::start().await;
    let app =
        proxy_with(&upstream, |settings| settings.proxy_anonymous_paths = Some("/health, /static/*".into())).await;
    let navigation = app.browser.get(app.url("/reports?q=1")).header("accept", HTML).send().await.unwrap();
    assert_eq!(navigation.status(), StatusCode::SEE_OTHER);
    assert_eq!(location(&navigation), "/login?return_to=%2Freports%3Fq%3D1");

    for request in [
        app.browser.get(app.url("/api/data")).header("accept", "application/json"),
        app.browser.get(app.url("/reports")).header("accept", HTML).header("x-requested-with", "XMLHttpRequest"),
        app.browser.post(app.url("/reports")).header("accept", HTML).body("x=1"),
    ] {
        let response = request.send().await.unwrap();
        assert_eq!(response.status(), StatusCode::UNAUTHORIZED, "never a redirect for a script or an API");
        let challenge = response.headers()["www-authenticate"].to_str().unwrap().to_owned();
        let host = app.base_url.trim_start_matches("http://");
        assert!(challenge.starts_with(&format!("Bearer realm=\"{host}\", authorization_uri=\"")), "{challenge}");
        assert!(challenge.ends_with("/oauth2/v2.0/authorize\""), "{challenge}");
    }
    // The realm is the Host the client sent, with anything but a host name's characters dropped.
    let hostile =
        app.browser.get(app.url("/api/data")).header("host", "app.example:443\", evil=\"1").send().await.unwrap();
    assert_eq!(hostile.status(), StatusCode::UNAUTHORIZED);
    let challenge = hostile.headers()["www-authenticate"].to_str().unwrap().to_owned();
    assert!(challenge.starts_with("Bearer realm=\"app.example:443evil1\", authorization_uri="), "{challenge}");
    assert_eq!(echo(&app, "/health", &[]).await["path"], "/health");
    assert_eq!(echo(&app, "/static/app.js", &[("accept", HTML)]).await["path"], "/static/app.js");
    assert_eq!(app.get("/healthy").await.status(), StatusCode::UNAUTHORIZED, "an exact path is exact");

    // After sign-in the browser comes back to where it was going.
    let authorize = app.start_sign_in("/login?return_to=%2Freports%3Fq%3D1").await;
    let callback = app.sign_in_at_emulator(&authorize, ADELE, ADELE_PASSWORD, true).await;
    let back = app.browser.get(callback).send().await.unwrap();
    assert_eq!(location(&back), "/reports?q=1");
}

#[tokio::test]
async fn metrics_are_ours_with_a_token_else_the_path_is_the_app_behinds_behind_sign_in() {
    let upstream = upstream::start().await;
    let app = proxy_with(&upstream, |_| {}).await;
    let anonymous = app.browser.get(app.url("/metrics")).header("accept", HTML).send().await.unwrap();
    assert_eq!(anonymous.status(), StatusCode::SEE_OTHER, "the app's own path, which needs sign-in");
    assert!(location(&anonymous).starts_with("/login?return_to=%2Fmetrics"), "{}", location(&anonymous));
    app.sign_in_adele().await;
    let echoed = echo(&app, "/metrics", &[("accept", HTML)]).await;
    assert_eq!(echoed["path"], "/metrics");
    assert_eq!(header(&echoed, "x-ms-client-principal-name"), Some(ADELE));

    let token = "m3tr1cs-t0ken-for-the-scraper-0123456789";
    let app = proxy_with(&upstream, move |settings| settings.metrics_token = Some(token.into())).await;
    app.sign_in_adele().await;
    let signed_in = app.get("/metrics").await;
    assert_eq!(signed_in.status(), StatusCode::UNAUTHORIZED, "ours, and a session is not the token");
    let scraped = app.browser.get(app.url("/metrics")).bearer_auth(token).send().await.unwrap();
    assert_eq!(scraped.status(), StatusCode::OK);
    assert!(scraped.text().await.unwrap().contains("entra_sign_ins_completed_total"));
}

/// The status of `GET target` sent over a raw connection: HTTP clients (reqwest included) resolve
/// dot segments before sending, an attacker's client does not.
async fn raw_get_status(app: &TestApp, target: &str) -> u16 {
    raw_get_status_with(app, target, None).await
}

/// The same, with a `Cookie` header.
async fn raw_get_status_with(app: &TestApp, target: &str, cookie: Option<&str>) -> u16 {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let address = app.base_url.trim_start_matches("http://").replace("localhost", "127.0.0.1");
    let mut stream = tokio::net::TcpStream::connect(&address).await.unwrap();
    let cookie = cookie.map(|cookie| format!("Cookie: {cookie}\r\n")).unwrap_or_default();
    let request = format!(
        "GET {target} HTTP/1.1\r\nHost: {address}\r\nAccept: application/json\r\n{cookie}Connection: close\r\n\r\n"
    );
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut answer = Vec::new();
    stream.read_to_end(&mut answer).await.unwrap();
    let answer = String::from_utf8_lossy(&answer);
    answer.split(' ').nth(1).and_then(|status| status.parse().ok()).unwrap_or_else(|| panic!("no status: {answer}"))
}

#[tokio::test]
async fn a_path_that_only_looks_anonymous_needs_a_session() {
    let upstream = upstream::start().await;
    let app =
        proxy_with(&upstream, |settings| settings.proxy_anonymous_paths = Some("/public/*, /health".into())).await;
    for plain in ["/public/page", "/public/a..b/c.css", "/health"] {
        assert_eq!(raw_get_status(&app, plain).await, 200, "{plain} is anonymous");
    }
    // Many servers resolve each of these to `/private` (dot segments, their percent-encoded
    // spellings, Tomcat's `..;`, IIS's backslash, an upstream that decodes twice): under an
    // anonymous prefix, they would be a way round sign-in.
    for disguised in [
        "/public/../private",
        "/public/./../private",
        "/public/%2e%2e/private",
        "/public/%2E%2E%2Fprivate",
        "/public/.%2e/private",
        "/public/..;/private",
        "/public/..\\private",
        "/public/%5c..%5cprivate",
        "/public/%252e%252e/private",
    ] {
        assert_eq!(raw_get_status(&app, disguised).await, 401, "{disguised} needs a session");
    }
}

/// Anyone may come, with their identity once signed in; but a path a rule guards (here for a
/// role Adele has, and one she has not) needs sign-in first, as by default: the rule names who may
/// reach it, and an unknown visitor is not among them.
#[tokio::test]
async fn allow_anonymous_forwards_without_identity_and_with_it_once_signed_in_but_not_onto_guarded_paths() {
    let upstream = upstream::start().await;
    let app = proxy_with(&upstream, |settings| {
        settings.proxy_unauthenticated_action = "allow".into();
        settings.proxy_path_roles = Some("/reports/*=Reader; /admin/*=Admin".into());
    })
    .await;
    let anonymous = echo(&app, "/", &[("accept", HTML)]).await;
    assert!(header(&anonymous, "x-ms-client-principal").is_none());
    for path in ["/reports/q3", "/ADMIN/users", "/static/../admin/users"] {
        let page = app.browser.get(app.url(path)).header("accept", HTML).send().await.unwrap();
        assert_eq!(page.status(), StatusCode::SEE_OTHER, "{path}: a browser goes to sign in");
        assert!(location(&page).starts_with("/login?return_to="), "{}", location(&page));
        assert_eq!(raw_get_status(&app, path).await, 401, "{path}: anything else is challenged");
    }
    app.sign_in_adele().await;
    assert_eq!(header(&echo(&app, "/", &[]).await, "x-ms-client-principal-name"), Some(ADELE));
    assert_eq!(header(&echo(&app, "/reports/q3", &[]).await, "x-ms-client-principal-name"), Some(ADELE));
    let refused = app.browser.get(app.url("/admin/users")).send().await.unwrap();
    assert_eq!(refused.status(), StatusCode::FORBIDDEN, "signed in, she still lacks Admin");
}

#[tokio::test]
async fn the_access_policy_gates_proxied_paths_and_forward_auth() {
    let upstream = upstream::start().await;
    let app = proxy_with(&upstream, |settings| {
        settings.allowed_roles = Some("Admin".into());
        settings.proxy_anonymous_paths = Some("/static/*".into());
    })
    .await;
    assert_eq!(app.get("/.auth/verify").await.status(), StatusCode::UNAUTHORIZED);
    app.sign_in_adele().await;
    let page = app.browser.get(app.url("/reports")).header("accept", HTML).send().await.unwrap();
    assert_eq!(page.status(), StatusCode::FORBIDDEN);
    assert!(page.text().await.unwrap().contains("id=\"access-denied\""));
    // A script or an API gets the reason in plain text, not the page.
    let api = app.browser.get(app.url("/api/data")).send().await.unwrap();
    assert_eq!(api.status(), StatusCode::FORBIDDEN);
    let reason = api.text().await.unwrap();
    assert!(reason.contains("Admin") && !reason.contains("<html"), "{reason}");
    assert_eq!(app.get("/.auth/verify").await.status(), StatusCode::FORBIDDEN);
    // An anonymous path stays open to her, without her identity.
    let open_path = echo(&app, "/static/app.css", &[("accept", HTML)]).await;
    assert!(header(&open_path, "x-ms-client-principal").is_none() && header(&open_path, "x-forwarded-user").is_none());

    let open = proxy_with(&upstream, |_| {}).await;
    open.sign_in_adele().await;
    let verified = open.get("/.auth/verify").await;
    assert_eq!(verified.status(), StatusCode::OK);
    assert_eq!(verified.headers()["x-ms-client-principal-name"], ADELE);
    assert!(verified.headers().contains_key("x-ms-client-principal"));
}

/// Path rules (`PROXY_PATH_ROLES`, `PROXY_PATH_GROUPS`) gate the paths they name on top of the
/// access policy, however a client spells them (sent over a raw connection, as an attacker's
/// client would): proxied requests, forward auth (by `X-Forwarded-Uri`), and a WebSocket.
#[tokio::test]
async fn path_rules_gate_the_paths_they_name_however_they_are_spelt() {
    let upstream = upstream::start().await;
    let nobodys_group = "0b0d1e50-0000-4000-8000-00000000f1a1";
    let app = proxy_with(&upstream, move |settings| {
        settings.proxy_path_roles = Some("/admin/*=Admin; /reports/*=Reader,Admin; /ws=Admin".into());
        settings.proxy_path_groups =
            Some(format!("/sales/*={}; /finance/*={nobodys_group}", entra_emulator::SALES_GROUP_ID));
    })
    .await;
    let cookie = sign_in_keeping_proxy_cookie(&app).await;
    // Her role (Reader) and her group (Sales), and paths no rule names: with her identity.
    for path in ["/reports/q3", "/sales/leads", "/", "/administrator", "/public/admin"] {
        assert_eq!(header(&echo(&app, path, &[]).await, "x-ms-client-principal-name"), Some(ADELE), "{path}");
    }
    // Not hers, however spelt.
    for path in [
        "/admin",
        "/admin/users",
        "/ADMIN/users",
        "//admin/users",
        "/static/../admin/users",
        "/static/%2e%2e/admin/users",
        "/%61dmin/users",
        "/admin;jsessionid=1/users",
        "/static\\..\\admin",
        "/finance/q3",
        "/ws/",
    ] {
        assert_eq!(raw_get_status_with(&app, path, Some(&cookie)).await, 403, "{path}");
    }
    let page = app.browser.get(app.url("/admin/users")).header("accept", HTML).send().await.unwrap();
    assert_eq!(page.status(), StatusCode::FORBIDDEN);
    assert!(page.text().await.unwrap().contains(r#"<code id="requirement">role</code>"#), "the 403 page says which");

    // Forward auth answers for the path the front end asks about; without one, every rule applies.
    let verify = |uri: Option<&'static str>| {
        let request = app.browser.get(app.url("/.auth/verify"));
        let request = match uri {
            Some(uri) => request.header("x-forwarded-uri", uri),
            None => request,
        };
        async move { request.send().await.unwrap().status() }
    };
    assert_eq!(verify(Some("/reports/q3?year=2026")).await, StatusCode::OK);
    assert_eq!(verify(Some("/static/../admin/users")).await, StatusCode::FORBIDDEN);
    assert_eq!(verify(Some("http://app.example/x")).await, StatusCode::FORBIDDEN, "not a path: every rule");
    assert_eq!(verify(None).await, StatusCode::FORBIDDEN);

    // A WebSocket whose path a rule keeps from her is refused before any upgrade.
    let refused = tokio_tungstenite::connect_async(websocket_request(&app, "/ws", &[("cookie", &cookie)])).await;
    let Err(tokio_tungstenite::tungstenite::Error::Http(response)) = refused else { panic!("not upgraded") };
    assert_eq!(response.status(), StatusCode::FORBIDDEN);
}

#[tokio::test]
async fn forward_auths_401_says_where_to_sign_in_coming_back_only_to_a_local_path() {
    let upstream = upstream::start().await;
    let app = proxy_with(&upstream, |_| {}).await;
    let sign_in_url = |forwarded_uri: Option<&'static str>| {
        let mut request = app.browser.get(app.url("/.auth/verify"));
        if let Some(uri) = forwarded_uri {
            request = request.header("x-forwarded-uri", uri);
        }
        async move {
            let response = request.send().await.unwrap();
            assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
            let url = response.headers()["x-sign-in-url"].to_str().unwrap().to_owned();
            assert!(url.starts_with("/login?"), "{url}");
            query_param(&format!("http://x{url}"), "return_to")
        }
    };
    assert_eq!(
        sign_in_url(Some("/reports?year=2026&team=a%20b")).await.as_deref(),
        Some("/reports?year=2026&team=a%20b")
    );
    // Not a local path: back to the root, whatever the front end was told.
    for hostile in
        [None, Some("//evil.example/x"), Some("https://evil.example/"), Some("/\\evil.example"), Some("evil")]
    {
        assert_eq!(sign_in_url(hostile).await.as_deref(), Some("/"), "{hostile:?}");
    }
    // Signed in, no sign-in URL.
    app.sign_in_adele().await;
    let verified =
        app.browser.get(app.url("/.auth/verify")).header("x-forwarded-uri", "/reports").send().await.unwrap();
    assert_eq!(verified.status(), StatusCode::OK);
    assert!(!verified.headers().contains_key("x-sign-in-url"));
}

#[tokio::test]
async fn requests_carry_our_via_and_one_that_comes_back_is_a_508_page_after_one_round() {
    // A client's `Via` is kept, ours appended.
    let upstream = upstream::start().await;
    let app = proxy_with(&upstream, |settings| settings.proxy_unauthenticated_action = "allow".into()).await;
    let echoed = echo(&app, "/via", &[("via", "1.1 corp-gateway")]).await;
    let via: Vec<&str> = echoed["headers"]["via"].as_array().unwrap().iter().map(|v| v.as_str().unwrap()).collect();
    assert_eq!(via.len(), 2, "{via:?}");
    assert_eq!(via[0], "1.1 corp-gateway");
    assert!(via[1].starts_with("1.1 entra-webapp-"), "{via:?}");
    // Another proxy of ours (another process, another name) is not a loop.
    let other = proxy_with(&upstream, |settings| settings.proxy_unauthenticated_action = "allow".into()).await;
    let through_both = echo(&other, "/via", &[("via", via[1])]).await;
    assert_eq!(through_both["headers"]["via"].as_array().unwrap().len(), 2);

    // UPSTREAM_URL naming the proxy's own socket in a way the start-up check cannot see (an
    // IPv4-mapped IPv6 address): the request comes back once and is answered 508, rather than
    // going round until every connection is taken.
    let looped = spawn_app_with(Options {
        settings_change: Some(Box::new(|settings, _| {
            settings.upstream_url = Some(format!("http://[::ffff:127.0.0.1]:{}", settings.port));
            settings.proxy_unauthenticated_action = "allow".into();
        })),
        ..Options::default()
    })
    .await;
    for _ in 0..3 {
        let response = looped.browser.get(looped.url("/anything")).header("accept", HTML).send().await.unwrap();
        assert_eq!(response.status(), StatusCode::LOOP_DETECTED);
        let page = response.text().await.unwrap();
        assert!(page.contains("UPSTREAM_URL"), "{page}");
    }
    // Our own routes still answer.
    assert_eq!(looped.get("/healthz").await.status(), StatusCode::OK);
}

#[tokio::test]
async fn websocket_messages_pass_through_both_ways() {
    let upstream = upstream::start().await;
    let app = proxy_with(&upstream, |_| {}).await;
    let cookie = sign_in_keeping_proxy_cookie(&app).await;
    let mut socket = open_websocket(&app, &cookie).await;
    for text in ["hello", "again"] {
        assert!(echoes(&mut socket, text).await, "{text}");
    }
    socket.close(None).await.unwrap();

    // Without a session there is no upgrade.
    let anonymous = tokio_tungstenite::connect_async(format!("{}/ws", app.base_url.replace("http://", "ws://"))).await;
    assert!(anonymous.is_err(), "refused before any upgrade");
}

/// Opens `/ws/whoami` through the proxy with the session cookie and `origin`: what the socket
/// said, or the status the handshake was refused with.
async fn websocket_whoami(app: &TestApp, cookie: &str, origin: &str) -> Result<String, u16> {
    let request = websocket_request(app, "/ws/whoami", &[("cookie", cookie), ("origin", origin)]);
    match tokio_tungstenite::connect_async(request).await {
        Ok((mut socket, _)) => Ok(socket.next().await.unwrap().unwrap().into_text().unwrap().as_str().to_owned()),
        Err(tokio_tungstenite::tungstenite::Error::Http(response)) => Err(response.status().as_u16()),
        Err(error) => panic!("{error}"),
    }
}

/// Our `SameSite=Lax` cookie keeps other sites' pages out, but a page of another origin on the
/// same site (a sibling subdomain, another port) gets it sent with its requests: what could change
/// something (unsafe methods, WebSocket handshakes) never reaches the app as the user from there.
/// (`browser/journeys.rs` shows the same in Chromium.)
#[tokio::test]
async fn another_origins_pages_never_reach_the_app_as_the_user_with_what_could_change_something() {
    let upstream = upstream::start().await;
    let app = proxy_with(&upstream, |settings| {
        settings.proxy_anonymous_paths = Some("/public/*".into());
        settings.proxy_trusted_origins = Some("http://localhost:3000".into());
    })
    .await;
    let cookie = sign_in_keeping_proxy_cookie(&app).await;
    let own_origin = app.base_url.clone();
    let post = |path: &str, headers: &[(&'static str, &'static str)]| {
        let mut request = app.browser.post(app.url(path)).body("amount=100");
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        request.send()
    };
    let as_whom = |echoed: &Value| header(echoed, "x-ms-client-principal-name").map(str::to_owned);

    // The browser says another origin's page sent it, or (before fetch metadata) its Origin does.
    for headers in [
        vec![("sec-fetch-site", "same-site"), ("origin", "http://localhost:1")],
        vec![("sec-fetch-site", "cross-site")],
        vec![("origin", "http://localhost:1")],
        vec![("origin", "null")],
    ] {
        let refused = post("/transfer", &headers).await.unwrap();
        assert_eq!(refused.status(), StatusCode::FORBIDDEN, "{headers:?}");
        assert!(refused.text().await.unwrap().contains("another site"), "our page");
    }
    assert_eq!(websocket_whoami(&app, &cookie, "http://localhost:1").await, Err(403));

    // The app's own pages, a trusted origin, and clients that are not browsers are the user.
    let same_origin = post("/transfer", &[("sec-fetch-site", "same-origin"), ("origin", "http://localhost:1")]);
    assert_eq!(as_whom(&same_origin.await.unwrap().json().await.unwrap()).as_deref(), Some(ADELE));
    let own_origin_only = app.browser.post(app.url("/transfer")).header("origin", &own_origin).send();
    assert_eq!(as_whom(&own_origin_only.await.unwrap().json().await.unwrap()).as_deref(), Some(ADELE));
    let trusted = post("/transfer", &[("sec-fetch-site", "same-site"), ("origin", "http://localhost:3000")]);
    assert_eq!(as_whom(&trusted.await.unwrap().json().await.unwrap()).as_deref(), Some(ADELE));
    assert_eq!(as_whom(&post("/transfer", &[]).await.unwrap().json().await.unwrap()).as_deref(), Some(ADELE));
    assert_eq!(websocket_whoami(&app, &cookie, &own_origin).await, Ok(format!("hello {ADELE}")));
    assert_eq!(websocket_whoami(&app, &cookie, "http://localhost:3000").await, Ok(format!("hello {ADELE}")));
    // Reading stays open to any page (the same-origin policy keeps the answer from it).
    let read = app.browser.get(app.url("/report")).header("sec-fetch-site", "same-site").send().await.unwrap();
    assert_eq!(as_whom(&read.json().await.unwrap()).as_deref(), Some(ADELE));

    // Where anyone may post, another origin's page comes as nobody.
    let anonymous = post("/public/form", &[("sec-fetch-site", "same-site")]).await.unwrap();
    assert_eq!(anonymous.status(), StatusCode::OK);
    let anonymous: Value = anonymous.json().await.unwrap();
    assert_eq!(as_whom(&anonymous), None);
    assert!(header(&anonymous, "x-ms-client-principal").is_none() && header(&anonymous, "cookie").is_none());
}

/// Forward auth answers for the request the front end asks about: its method and host as the
/// front end says them (`X-Forwarded-Method`, `X-Forwarded-Host`).
#[tokio::test]
async fn forward_auth_refuses_what_another_origins_page_could_change() {
    let upstream = upstream::start().await;
    let app = proxy_with(&upstream, |_| {}).await;
    app.sign_in_adele().await;
    let verify = |headers: &[(&'static str, &'static str)]| {
        let mut request = app.browser.get(app.url("/.auth/verify"));
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        async move { request.send().await.unwrap().status() }
    };
    let other = ("origin", "https://other.example.com");
    assert_eq!(verify(&[("x-forwarded-method", "POST"), ("sec-fetch-site", "same-site")]).await, StatusCode::FORBIDDEN);
    assert_eq!(
        verify(&[("sec-fetch-mode", "websocket"), ("sec-fetch-site", "same-site")]).await,
        StatusCode::FORBIDDEN
    );
    assert_eq!(verify(&[("x-forwarded-method", "GET"), ("sec-fetch-site", "same-site")]).await, StatusCode::OK);
    assert_eq!(verify(&[("x-forwarded-method", "POST"), ("sec-fetch-site", "same-origin")]).await, StatusCode::OK);
    // Without fetch metadata, Origin against the host the front end was asked for.
    let front_end = ("x-forwarded-host", "app.example.com");
    assert_eq!(verify(&[("x-forwarded-method", "POST"), front_end, other]).await, StatusCode::FORBIDDEN);
    let own = ("origin", "https://app.example.com");
    assert_eq!(verify(&[("x-forwarded-method", "POST"), front_end, own]).await, StatusCode::OK);
    // No X-Forwarded-Host: the Host the question came with.
    assert_eq!(verify(&[("x-forwarded-method", "POST"), own]).await, StatusCode::FORBIDDEN);
}

/// Sends `text` on `socket` and waits (at most 10 s) for the upstream's echo.
pub(crate) async fn echoes<S>(socket: &mut S, text: &str) -> bool
where
    S: futures::Sink<tokio_tungstenite::tungstenite::Message>
        + futures::Stream<Item = Result<tokio_tungstenite::tungstenite::Message, tokio_tungstenite::tungstenite::Error>>
        + Unpin,
{
    if socket.send(tokio_tungstenite::tungstenite::Message::text(text)).await.is_err() {
        return false;
    }
    match tokio::time::timeout(std::time::Duration::from_secs(10), socket.next()).await {
        Ok(Some(Ok(reply))) => reply.into_text().is_ok_and(|reply| reply.as_str() == format!("echo: {text}")),
        _ => false,
    }
}

/// Whether `socket` is closed (its stream ends or fails) within `within`.
pub(crate) async fn closes_within<S>(socket: &mut S, within: std::time::Duration) -> bool
where
    S: futures::Stream<Item = Result<tokio_tungstenite::tungstenite::Message, tokio_tungstenite::tungstenite::Error>>
        + Unpin,
{
    let closed = async {
        loop {
            match socket.next().await {
                None | Some(Err(_)) | Some(Ok(tokio_tungstenite::tungstenite::Message::Close(_))) => return,
                Some(Ok(_)) => {}
            }
        }
    };
    tokio::time::timeout(within, closed).await.is_ok()
}

/// Signs Adele in through the proxy; returns its session cookie (`entra-session=...`).
pub(crate) async fn sign_in_keeping_proxy_cookie(app: &TestApp) -> String {
    let signed_in = app.sign_in(ADELE, ADELE_PASSWORD).await;
    cookie_pair(&set_cookie(&signed_in, "entra-session=").expect("the proxy's own session cookie"))
}

/// Opens `/ws` through `app` with the session `cookie`.
pub(crate) async fn open_websocket(
    app: &TestApp,
    cookie: &str,
) -> tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>> {
    let request = websocket_request(app, "/ws", &[("cookie", cookie)]);
    tokio_tungstenite::connect_async(request).await.expect("upgraded through the proxy").0
}

/// A WebSocket handshake for `path` through `app`, with these headers.
pub(crate) fn websocket_request(
    app: &TestApp,
    path: &str,
    headers: &[(&str, &str)],
) -> tokio_tungstenite::tungstenite::ClientRequestBuilder {
    let url = format!("{}{path}", app.base_url.replace("http://", "ws://"));
    let mut request = tokio_tungstenite::tungstenite::ClientRequestBuilder::new(url.parse().unwrap());
    for (name, value) in headers {
        request = request.with_header(*name, *value);
    }
    request
}

/// An open WebSocket speaks as the user it was opened by: it must end with the session, or a
/// cookie captured before sign-out would keep a socket that does.
#[tokio::test]
async fn a_websocket_closes_once_its_session_has_ended() {
    let upstream = upstream::start().await;
    let app = proxy_with(&upstream, |settings| settings.proxy_websocket_check_seconds = "1".into()).await;
    let cookie = sign_in_keeping_proxy_cookie(&app).await;
    let mut socket = open_websocket(&app, &cookie).await;
    assert!(echoes(&mut socket, "hello").await);
    // Checked and still signed in: the socket stays.
    tokio::time::sleep(std::time::Duration::from_millis(2500)).await;
    assert!(echoes(&mut socket, "still there").await);

    assert_eq!(app.sign_out().await.status(), StatusCode::SEE_OTHER);
    assert!(closes_within(&mut socket, std::time::Duration::from_secs(10)).await, "closed after sign-out");
    // And the captured cookie opens no new one (401 before any upgrade).
    assert!(tokio_tungstenite::connect_async(websocket_request(&app, "/ws", &[("cookie", &cookie)])).await.is_err());
}

/// A WebSocket opened by a user the access policy let in closes once a refresh of its session
/// brings memberships the policy refuses (here: out of the group it requires), as the next HTTP
/// request of that session is refused; likewise for a path rule of the socket's path (then the
/// request that brings the refresh, to a path without a rule, is let in).
#[tokio::test]
async fn a_websocket_closes_once_its_user_is_no_longer_let_in() {
    let sales = entra_emulator::SALES_GROUP_ID.to_string();
    for (by_path_rule, next_request) in [(false, StatusCode::FORBIDDEN), (true, StatusCode::OK)] {
        let upstream = upstream::start().await;
        let sales = sales.clone();
        let app = proxy_with_short_tokens(&upstream, move |settings| {
            settings.proxy_websocket_check_seconds = "1".into();
            match by_path_rule {
                true => settings.proxy_path_groups = Some(format!("/ws={sales}")),
                false => settings.allowed_groups = Some(sales),
            }
        })
        .await;
        let cookie = sign_in_keeping_proxy_cookie(&app).await;
        let mut socket = open_websocket(&app, &cookie).await;
        assert!(echoes(&mut socket, "hello").await);

        // Out of Sales at Entra; the session learns it at its next refresh, which a request of the
        // page (another tab, a script) brings once the access token is due.
        admin_put(&app, &format!("/users/{ADELE}/groups"), serde_json::json!({ "groups": [] })).await;
        tokio::time::sleep(SHORT_TOKEN_LIFETIME + std::time::Duration::from_millis(1200)).await;
        assert!(echoes(&mut socket, "not refreshed yet").await, "nothing has told the session yet");
        let request = browser().get(app.url("/api/data")).header("cookie", &cookie).send().await.unwrap();
        assert_eq!(request.status(), next_request, "the refreshed session, by the path rule: {by_path_rule}");
        let closed = closes_within(&mut socket, std::time::Duration::from_secs(10)).await;
        assert!(closed, "and the socket is closed, by the path rule: {by_path_rule}");
    }
}

/// A WebSocket is a connection like any other: it keeps its place among MAX_CONNECTIONS while open
/// (else a client could hold sockets, and connections to the app behind, without bound), and is
/// closed when the app stops rather than holding shutdown up.
#[tokio::test]
async fn websockets_count_against_max_connections_and_close_when_the_app_stops() {
    let upstream = upstream::start().await;
    let header_timeout = std::time::Duration::from_secs(1);
    let limits = entra_webapp::config::ServerLimits {
        header_read_timeout: header_timeout,
        max_connections: 2,
        ..entra_webapp::config::ServerLimits::default()
    };
    let mut app =
        proxy_with_options(&upstream, |_| {}, Options { server_limits: Some(limits), ..Options::default() }).await;
    let cookie = sign_in_keeping_proxy_cookie(&app).await;
    let mut first = open_websocket(&app, &cookie).await;
    let mut second = open_websocket(&app, &cookie).await;
    assert!(echoes(&mut first, "one").await && echoes(&mut second, "two").await);

    // Both places taken by sockets (kept-alive HTTP connections are gone after the header timeout):
    // a new connection waits until a socket closes.
    let waiting = tokio::spawn({
        let url = app.url("/healthz");
        async move { browser().get(url).send().await.map(|response| response.status()) }
    });
    tokio::time::sleep(header_timeout * 2).await;
    assert!(!waiting.is_finished(), "over the cap: not served while two sockets are open");
    assert!(echoes(&mut first, "still one").await);
    first.close(None).await.unwrap();
    drop(first);
    assert_eq!(waiting.await.unwrap().unwrap(), StatusCode::OK, "served once a socket closed");

    tokio::time::timeout(std::time::Duration::from_secs(10), app.stop()).await.expect("the app stops");
    assert!(closes_within(&mut second, std::time::Duration::from_secs(5)).await, "closed on shutdown");
}

/// A session that reaches its end (here its absolute lifetime) ends its sockets too.
#[tokio::test]
async fn a_websocket_closes_when_its_session_expires() {
    let upstream = upstream::start().await;
    let app = proxy_with_options(
        &upstream,
        |settings| settings.proxy_websocket_check_seconds = "1".into(),
        Options { session_max_lifetime: Some(std::time::Duration::from_secs(3)), ..Options::default() },
    )
    .await;
    let cookie = sign_in_keeping_proxy_cookie(&app).await;
    let mut socket = open_websocket(&app, &cookie).await;
    assert!(echoes(&mut socket, "hello").await);
    assert!(closes_within(&mut socket, std::time::Duration::from_secs(15)).await, "closed when the session expired");
}

/// The process's peak resident memory so far (VmHWM), KiB.
fn peak_rss_kib() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    let line = status.lines().find(|line| line.starts_with("VmHWM:")).unwrap();
    line.split_whitespace().nth(1).unwrap().parse().unwrap()
}

fn current_rss_kib() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    let line = status.lines().find(|line| line.starts_with("VmRSS:")).unwrap();
    line.split_whitespace().nth(1).unwrap().parse().unwrap()
}

#[tokio::test]
async fn a_100_mb_upload_and_download_stream_in_constant_memory() {
    const MIB: usize = 1024 * 1024;
    let upstream = upstream::start().await;
    let app = proxy_with(&upstream, |_| {}).await;
    app.sign_in_adele().await;
    // Warm every path once, so the measure below sees only the transfers.
    assert_eq!(app.browser.get(app.url("/download/1")).send().await.unwrap().bytes().await.unwrap().len(), MIB);
    let before = current_rss_kib();

    let chunk = axum::body::Bytes::from(vec![7u8; 64 * 1024]);
    let chunks = futures::stream::iter((0..1600).map(move |_| Ok::<_, std::io::Error>(chunk.clone())));
    let uploaded = app.browser.post(app.url("/upload")).body(reqwest::Body::wrap_stream(chunks)).send().await.unwrap();
    assert_eq!(uploaded.status(), StatusCode::OK);
    assert_eq!(uploaded.text().await.unwrap(), (100 * MIB).to_string(), "every byte arrived");

    let mut download = app.browser.get(app.url("/download/100")).send().await.unwrap();
    assert_eq!(download.status(), StatusCode::OK);
    let mut received = 0;
    while let Some(chunk) = download.chunk().await.unwrap() {
        received += chunk.len();
    }
    assert_eq!(received, 100 * MIB);
    // Buffering either body would have added at least 100 MiB to the peak.
    let grown_mib = peak_rss_kib().saturating_sub(before) / 1024;
    assert!(grown_mib < 40, "peak memory grew by {grown_mib} MiB while 200 MiB went through");
}

/// A body sent a chunk every `gap`, `count` chunks of 1 KiB, then `stall` (if any) before the end.
fn trickled_body(count: usize, gap: std::time::Duration, stall: Option<std::time::Duration>) -> reqwest::Body {
    let chunks = futures::stream::unfold(0, move |sent| async move {
        if sent == count {
            if let Some(stall) = stall {
                tokio::time::sleep(stall).await;
            }
            return None;
        }
        tokio::time::sleep(gap).await;
        Some((Ok::<_, std::io::Error>(axum::body::Bytes::from(vec![1u8; 1024])), sent + 1))
    });
    reqwest::Body::wrap_stream(chunks)
}

/// The upstream's time to answer (`UPSTREAM_TIMEOUT_SECONDS`) starts once it has the whole
/// request: an upload that takes longer than that to send, on a slow link, goes through. A client
/// that stops sending for that long is cut off instead (408), so a trickled body cannot hold a
/// connection, and one to the app behind, for ever.
#[tokio::test]
async fn a_slow_upload_goes_through_and_a_stalled_one_is_cut_off() {
    let upstream = upstream::start().await;
    let app = proxy_with(&upstream, |settings| settings.upstream_timeout_seconds = "1".into()).await;
    app.sign_in_adele().await;
    // 3 s to send, never 1 s without a byte.
    let slow = trickled_body(10, std::time::Duration::from_millis(300), None);
    let uploaded = app.browser.post(app.url("/upload")).body(slow).send().await.unwrap();
    assert_eq!(uploaded.status(), StatusCode::OK);
    assert_eq!(uploaded.text().await.unwrap(), "10240", "every byte arrived");

    let stalled = trickled_body(2, std::time::Duration::from_millis(100), Some(std::time::Duration::from_secs(30)));
    let cut_off = app.browser.post(app.url("/upload")).body(stalled).send();
    let cut_off = tokio::time::timeout(std::time::Duration::from_secs(15), cut_off).await.expect("not held for ever");
    let cut_off = cut_off.unwrap();
    assert_eq!(cut_off.status(), StatusCode::REQUEST_TIMEOUT);
    assert!(cut_off.text().await.unwrap().contains("stopped"), "our page");
}

#[tokio::test]
async fn an_upstream_that_is_slow_is_a_504_page() {
    let upstream = upstream::start().await;
    let app = proxy_with(&upstream, |settings| settings.upstream_timeout_seconds = "1".into()).await;
    app.sign_in_adele().await;
    let slow = app.browser.get(app.url("/slow")).header("accept", HTML).send().await.unwrap();
    assert_eq!(slow.status(), StatusCode::GATEWAY_TIMEOUT);
    let html = slow.text().await.unwrap();
    assert!(html.contains("The app is taking too long") && html.contains("id=\"request-id\""), "{html}");
    assert_eq!(app.readiness().await.0, StatusCode::OK, "slow is not down");
}

#[tokio::test]
async fn an_upstream_that_is_down_is_a_502_page_and_readiness_says_so() {
    // A port held (bound, so nobody else can take it) but not listening: connections are refused.
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    socket.bind("127.0.0.1:0".parse().unwrap()).unwrap();
    let closed = socket.local_addr().unwrap();
    let app = spawn_app_with(Options {
        settings_change: Some(Box::new(move |settings, _| settings.upstream_url = Some(format!("http://{closed}")))),
        ..Options::default()
    })
    .await;
    app.sign_in_adele().await;
    let down = app.browser.get(app.url("/reports")).header("accept", HTML).send().await.unwrap();
    assert_eq!(down.status(), StatusCode::BAD_GATEWAY);
    assert!(down.text().await.unwrap().contains("The app is not answering"));
    // With a body on its way too: the upstream's failure, not the client's (408).
    let posted = app.browser.post(app.url("/reports")).body(trickled_body(3, std::time::Duration::ZERO, None));
    assert_eq!(posted.send().await.unwrap().status(), StatusCode::BAD_GATEWAY);
    let not_ready = (StatusCode::SERVICE_UNAVAILABLE, "not ready: upstream unreachable".to_owned());
    assert_eq!(app.readiness().await, not_ready);
}

#[tokio::test]
async fn upstream_responses_keep_their_own_headers() {
    let upstream = upstream::start().await;
    let app = proxy_with(&upstream, |settings| settings.proxy_anonymous_paths = Some("/*".into())).await;
    let response = app.get("/anything").await;
    assert_eq!(response.status(), StatusCode::OK);
    for ours in ["content-security-policy", "x-frame-options"] {
        assert!(!response.headers().contains_key(ours), "{ours} is the upstream's business");
    }
    assert!(response.headers().contains_key("x-request-id"), "traced like every request");
}

/// An app moving from Easy Auth keeps its app registration, whose redirect URI is Easy Auth's
/// callback path.
#[tokio::test]
async fn easy_auths_callback_path_can_be_the_redirect_uri() {
    const EASY_AUTH_CALLBACK: &str = "/.auth/login/aad/callback";
    let upstream = upstream::start().await;
    let registered = Options {
        emulator_setup: Some(Box::new(|_, client| {
            client.redirect_uris =
                client.redirect_uris.iter().map(|uri| uri.replace("/callback", EASY_AUTH_CALLBACK)).collect();
        })),
        ..Options::default()
    };
    let app = proxy_with_options(
        &upstream,
        |settings| {
            settings.redirect_uri =
                settings.redirect_uri.as_ref().map(|uri| uri.replace("/callback", EASY_AUTH_CALLBACK))
        },
        registered,
    )
    .await;
    let easy_auth_login = location(&app.get("/.auth/login/aad?post_login_redirect_uri=/reports").await);
    let authorize = app.start_sign_in(&easy_auth_login).await;
    let callback = app.sign_in_at_emulator(&authorize, ADELE, ADELE_PASSWORD, true).await;
    assert!(callback.starts_with(&app.url(&format!("{EASY_AUTH_CALLBACK}?"))), "{callback}");
    let signed_in = app.browser.get(callback).send().await.unwrap();
    assert_eq!(signed_in.status(), StatusCode::SEE_OTHER);
    assert_eq!(location(&signed_in), "/reports");
    assert_eq!(header(&echo(&app, "/reports", &[]).await, "x-ms-client-principal-name"), Some(ADELE));
    // Sign-out comes back to that callback too (the one URI registered) and ends on the
    // signed-out page.
    let confirmation = location(&app.get("/.auth/logout").await);
    assert_eq!(app.sign_out_landing_at(&confirmation, EASY_AUTH_CALLBACK).await, "/.auth/logout/complete");
}

/// With `PROXY_OWN_ROUTES=/.auth` our routes are all under `/.auth/`, as App Service
/// authentication's: an app behind with its own `/login`, `/logout`, `/healthz`, `/readyz` and
/// `/metrics` gets them (behind sign-in, with the identity), while sign-in, sign-out (the
/// confirmation's form posting to ours), the error pages' links, health and metrics are at ours.
#[tokio::test]
async fn with_our_routes_under_dot_auth_the_app_behind_keeps_its_login_logout_and_health_paths() {
    const CALLBACK: &str = "/.auth/login/aad/callback";
    const METRICS_TOKEN: &str = "metrics-token-for-the-dot-auth-test";
    let upstream = upstream::start().await;
    let registered = Options {
        emulator_setup: Some(Box::new(|_, client| {
            client.redirect_uris = client.redirect_uris.iter().map(|uri| uri.replace("/callback", CALLBACK)).collect();
        })),
        ..Options::default()
    };
    let app = proxy_with_options(
        &upstream,
        |settings| {
            settings.redirect_uri = settings.redirect_uri.as_ref().map(|uri| uri.replace("/callback", CALLBACK));
            settings.proxy_own_routes = "/.auth".into();
            settings.metrics_token = Some(METRICS_TOKEN.into());
        },
        registered,
    )
    .await;

    // The app's `/login` needs sign-in like any of its pages: ours, and back to it.
    let to_sign_in = app.browser.get(app.url("/login")).header("accept", "text/html").send().await.unwrap();
    assert_eq!(to_sign_in.status(), StatusCode::SEE_OTHER);
    let sign_in = location(&to_sign_in);
    assert!(sign_in.starts_with("/.auth/sign-in?"), "{sign_in}");
    let authorize = app.start_sign_in(&sign_in).await;
    let callback = app.sign_in_at_emulator(&authorize, ADELE, ADELE_PASSWORD, true).await;
    let signed_in = app.browser.get(callback).send().await.unwrap();
    assert_eq!(location(&signed_in), "/login");
    for path in ["/login", "/logout", "/healthz", "/readyz", "/metrics", "/callback"] {
        let echoed = echo(&app, path, &[]).await;
        assert_eq!((echoed["path"].as_str(), header(&echoed, "x-ms-client-principal-name")), (Some(path), Some(ADELE)));
    }

    // Ours, under /.auth/.
    assert_eq!(app.get("/.auth/healthz").await.status(), StatusCode::OK);
    let ready = app.get("/.auth/readyz").await;
    assert_eq!((ready.status(), ready.text().await.unwrap()), (StatusCode::OK, "ready".to_owned()));
    let metrics = app.browser.get(app.url("/.auth/metrics")).bearer_auth(METRICS_TOKEN).send().await.unwrap();
    assert_eq!(metrics.status(), StatusCode::OK);
    assert!(metrics.text().await.unwrap().contains("entra_sign_ins_completed_total"));
    let forged = app.get(&format!("{CALLBACK}?code=forged&state=forged")).await;
    assert!(forged.status().is_client_error());
    assert!(forged.text().await.unwrap().contains(r#"href="/.auth/sign-in""#), "the error page's sign-in link");

    // Sign-out: Easy Auth's route, our confirmation (posting to ours), the signed-out page.
    let confirmation = location(&app.get("/.auth/logout").await);
    assert!(confirmation.starts_with("/.auth/sign-out"), "{confirmation}");
    assert_eq!(app.sign_out_landing_at(&confirmation, CALLBACK).await, "/.auth/logout/complete");
    assert!(app.page("/.auth/logout/complete").await.contains(r#"href="/.auth/sign-in""#));
    let after = app.browser.get(app.url("/logout")).header("accept", "text/html").send().await.unwrap();
    assert!(location(&after).starts_with("/.auth/sign-in?"), "the app's /logout is behind sign-in again");

    // Front-channel logout, at our sign-out route.
    let (client_id, front_channel) = (entra_emulator::DEFAULT_CLIENT_ID.to_string(), app.url("/.auth/sign-out"));
    assert!(app.emulator.update_client(&client_id, |client| client.front_channel_logout_url = Some(front_channel)));
    let authorize = app.start_sign_in(&location(&app.get("/.auth/login/aad").await)).await;
    let callback = app.sign_in_at_emulator(&authorize, ADELE, ADELE_PASSWORD, true).await;
    app.browser.get(callback).send().await.unwrap();
    assert_eq!(header(&echo(&app, "/x", &[]).await, "x-ms-client-principal-name"), Some(ADELE));
    let logout = format!("{}/oauth2/v2.0/logout", app.emulator.authority());
    assert_eq!(app.sign_out_of_entra_loading_frames(&logout).await, vec![StatusCode::OK]);
    let after = app.browser.get(app.url("/x")).header("accept", "text/html").send().await.unwrap();
    assert!(location(&after).starts_with("/.auth/sign-in?"), "front-channel logout ended the session");
}

#[tokio::test]
async fn redirects_to_the_upstreams_own_address_stay_on_the_site() {
    let upstream = upstream::start().await;
    let app = proxy_with(&upstream, |_| {}).await;
    app.sign_in_adele().await;
    let own = format!("{}/next?x=1", upstream.url);
    for (to, rewritten) in [
        (own.as_str(), "/next?x=1"),
        ("/relative", "/relative"),
        ("https://elsewhere.example/x", "https://elsewhere.example/x"),
    ] {
        let response = app
            .get(&format!("/redirect?to={}", url::form_urlencoded::byte_serialize(to.as_bytes()).collect::<String>()))
            .await;
        assert_eq!(response.status(), StatusCode::FOUND);
        assert_eq!(location(&response), rewritten, "{to}");
    }
}

#[tokio::test]
async fn trace_and_connect_never_reach_the_upstream() {
    // TRACE makes many servers echo the request, identity and token headers included, back to
    // whoever sent it: with a stolen cookie, a way to read the user's tokens.
    let upstream = upstream::start().await;
    let app = proxy_with(&upstream, |settings| settings.proxy_pass_tokens = "true".into()).await;
    app.sign_in_adele().await;
    for method in [reqwest::Method::TRACE, reqwest::Method::CONNECT] {
        let response = app.browser.request(method.clone(), app.url("/anything")).send().await.unwrap();
        assert_eq!(response.status(), StatusCode::METHOD_NOT_ALLOWED, "{method}");
        let body = response.text().await.unwrap();
        assert!(!app.emulator.issued_secrets().iter().any(|secret| body.contains(secret.as_str())), "{method}");
        assert!(!body.contains("x-ms-client-principal"), "{method} reached the upstream: {body}");
    }
    // Other methods pass.
    let echoed: Value =
        app.browser.request(reqwest::Method::OPTIONS, app.url("/anything")).send().await.unwrap().json().await.unwrap();
    assert_eq!(echoed["method"], "OPTIONS");
}

#[tokio::test]
async fn the_app_behind_cannot_set_our_cookies() {
    let upstream = upstream::start().await;
    let app = proxy_with(&upstream, |_| {}).await;
    app.sign_in_adele().await;
    let response = app.get("/set-cookies").await;
    assert_eq!(response.status(), StatusCode::OK);
    let set: Vec<&str> = response.headers().get_all("set-cookie").iter().map(|v| v.to_str().unwrap()).collect();
    assert_eq!(set, ["theirs=1; Path=/"], "the app's own cookie passes, ours do not");
    // The session the browser holds is still the proxy's own.
    assert_eq!(header(&echo(&app, "/private", &[]).await, "x-ms-client-principal-name"), Some(ADELE));
}
