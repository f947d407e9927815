use crate::helpers::*;
use reqwest::StatusCode;

#[tokio::test]
async fn unregistered_redirect_uri_shows_an_error_page_and_never_redirects() {
    let emulator = emulator().await;
    let request = AuthorizeRequest::new().set("redirect_uri", "https://evil.example/callback");
    let response = browser().get(request.url(&emulator)).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    assert!(response.headers().get("location").is_none());
    let html = response.text().await.unwrap();
    assert!(html.contains("AADSTS50011"), "{html}");
    assert!(html.contains("https://evil.example/callback"), "the page names the URI to register");
}

#[tokio::test]
async fn unknown_client_shows_an_error_page() {
    let emulator = emulator().await;
    let request = AuthorizeRequest::new().set("client_id", &uuid::Uuid::new_v4().to_string());
    let response = browser().get(request.url(&emulator)).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    assert!(response.text().await.unwrap().contains("AADSTS700016"));
}

#[tokio::test]
async fn with_the_strict_switch_plain_pkce_is_refused_back_to_the_redirect_uri() {
    let emulator = emulator_with(|config| config.strict_pkce = true).await;
    let request = AuthorizeRequest::new().set("code_challenge_method", "plain");
    let response = browser().get(request.url(&emulator)).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::FOUND);
    let url = location(&response);
    assert!(url.as_str().starts_with(REDIRECT_URI));
    assert_eq!(query_param(&url, "error").as_deref(), Some("invalid_request"));
    assert_eq!(query_param(&url, "error_codes").as_deref(), Some("[501491]"));
    assert_eq!(query_param(&url, "state").as_deref(), Some("state-123"));
    assert!(query_param(&url, "error_description").unwrap().starts_with("AADSTS501491:"));
}

#[tokio::test]
async fn wrong_response_type_and_bad_scopes_are_refused() {
    let emulator = emulator().await;
    for (name, value, error) in [
        ("response_type", "token", "unsupported_response_type"),
        ("scope", "https://evil.example/read", "invalid_resource"),
        ("scope", "User.Read<script>", "invalid_scope"),
        ("prompt", "sometimes", "invalid_request"),
    ] {
        let request = AuthorizeRequest::new().set(name, value);
        let response = browser().get(request.url(&emulator)).send().await.unwrap();
        assert_eq!(response.status(), StatusCode::FOUND, "{name}={value}");
        assert_eq!(query_param(&location(&response), "error").as_deref(), Some(error), "{name}={value}");
    }
}

#[tokio::test]
async fn sign_in_page_uses_entra_field_names_and_ids() {
    let emulator = emulator().await;
    let html = browser().get(AuthorizeRequest::new().url(&emulator)).send().await.unwrap().text().await.unwrap();
    assert!(html.contains("name=\"loginfmt\""));
    assert!(html.contains("id=\"idSIButton9\""));
}

#[tokio::test]
async fn two_step_sign_in_then_consent_then_code() {
    let emulator = emulator().await;
    let browser = browser();
    let request = AuthorizeRequest::new();
    let html = browser.get(request.url(&emulator)).send().await.unwrap().text().await.unwrap();
    let ctx = hidden_input(&html, "ctx").unwrap();
    let login_url = format!("{}/login", emulator.authority());

    // Step 1: the username only, as a person (or Entra automation) types it.
    let page = post_form(&browser, &login_url, &[("ctx", &ctx), ("loginfmt", ADELE), ("passwd", "")]).await;
    let html = page.text().await.unwrap();
    assert!(html.contains("name=\"passwd\"") && html.contains("Enter password"), "{html}");
    let ctx = hidden_input(&html, "ctx").unwrap();

    // Step 2: a wrong password is refused on the same page.
    let page = post_form(&browser, &login_url, &[("ctx", &ctx), ("loginfmt", ADELE), ("passwd", "nope")]).await;
    let html = page.text().await.unwrap();
    assert!(html.contains("AADSTS50126"), "{html}");
    let ctx = hidden_input(&html, "ctx").unwrap();

    let page = post_form(&browser, &login_url, &[("ctx", &ctx), ("loginfmt", ADELE), ("passwd", ADELE_PASSWORD)]).await;
    assert_eq!(page.status(), StatusCode::OK);
    let html = page.text().await.unwrap();
    assert!(html.contains("idBtn_Accept") && html.contains("idBtn_Back") && html.contains("User.Read"), "{html}");
    let response = accept_consent_if_asked(&browser, &emulator, reqwest::Response::from(http_ok(html))).await;
    assert_eq!(response.status(), StatusCode::FOUND);
    let url = location(&response);
    assert!(query_param(&url, "code").is_some());
    assert_eq!(query_param(&url, "state").as_deref(), Some("state-123"));
}

fn http_ok(body: String) -> axum::http::Response<String> {
    axum::http::Response::builder().status(200).body(body).unwrap()
}

#[tokio::test]
async fn unknown_user_is_told_on_the_sign_in_page() {
    let emulator = emulator().await;
    let browser = browser();
    let html = browser.get(AuthorizeRequest::new().url(&emulator)).send().await.unwrap().text().await.unwrap();
    let ctx = hidden_input(&html, "ctx").unwrap();
    let login_url = format!("{}/login", emulator.authority());
    let page =
        post_form(&browser, &login_url, &[("ctx", &ctx), ("loginfmt", "nobody@emulator.test"), ("passwd", "x")]).await;
    assert!(page.text().await.unwrap().contains("AADSTS50034"));
}

#[tokio::test]
async fn declined_consent_sends_access_denied() {
    let emulator = emulator().await;
    let browser = browser();
    let html = browser.get(AuthorizeRequest::new().url(&emulator)).send().await.unwrap().text().await.unwrap();
    let ctx = hidden_input(&html, "ctx").unwrap();
    let login_url = format!("{}/login", emulator.authority());
    let consent =
        post_form(&browser, &login_url, &[("ctx", &ctx), ("loginfmt", ADELE), ("passwd", ADELE_PASSWORD)]).await;
    let ctx = hidden_input(&consent.text().await.unwrap(), "ctx").unwrap();
    let consent_url = format!("{}/consent", emulator.authority());
    let response = post_form(&browser, &consent_url, &[("ctx", &ctx), ("accept", "false")]).await;
    let url = location(&response);
    assert_eq!(query_param(&url, "error").as_deref(), Some("access_denied"));
    assert_eq!(query_param(&url, "error_codes").as_deref(), Some("[65004]"));
}

#[tokio::test]
async fn sso_cookie_skips_the_password_and_consent_is_remembered() {
    let emulator = emulator().await;
    let browser = browser();
    code_for_adele(&browser, &emulator).await;

    let again = browser.get(AuthorizeRequest::new().url(&emulator)).send().await.unwrap();
    assert_eq!(again.status(), StatusCode::FOUND, "second sign-in is silent");
    assert!(query_param(&location(&again), "code").is_some());

    let forced = browser.get(AuthorizeRequest::new().set("prompt", "login").url(&emulator)).send().await.unwrap();
    assert_eq!(forced.status(), StatusCode::OK);
    assert!(forced.text().await.unwrap().contains("idSIButton9"), "prompt=login asks again");

    let consent = browser.get(AuthorizeRequest::new().set("prompt", "consent").url(&emulator)).send().await.unwrap();
    assert!(consent.text().await.unwrap().contains("idBtn_Accept"), "prompt=consent asks again");
}

#[tokio::test]
async fn prompt_none_without_a_session_returns_login_required() {
    let emulator = emulator().await;
    let response = browser().get(AuthorizeRequest::new().set("prompt", "none").url(&emulator)).send().await.unwrap();
    let url = location(&response);
    assert_eq!(query_param(&url, "error").as_deref(), Some("login_required"));
    assert_eq!(query_param(&url, "error_codes").as_deref(), Some("[50058]"));
}

#[tokio::test]
async fn login_hint_prefills_the_username() {
    let emulator = emulator().await;
    let request = AuthorizeRequest::new().set("login_hint", ADELE);
    let html = browser().get(request.url(&emulator)).send().await.unwrap().text().await.unwrap();
    assert!(html.contains(&format!("value=\"{ADELE}\"")), "{html}");
}

#[tokio::test]
async fn form_post_response_mode_answers_with_a_self_posting_form() {
    let emulator = emulator_with(|c| c.admin_consent = true).await;
    let request = AuthorizeRequest::new().set("response_mode", "form_post");
    let browser = browser();
    let html = browser.get(request.url(&emulator)).send().await.unwrap().text().await.unwrap();
    let ctx = hidden_input(&html, "ctx").unwrap();
    let login_url = format!("{}/login", emulator.authority());
    let page = post_form(&browser, &login_url, &[("ctx", &ctx), ("loginfmt", ADELE), ("passwd", ADELE_PASSWORD)]).await;
    let html = page.text().await.unwrap();
    assert!(
        html.contains(&format!("action=\"{}\"", REDIRECT_URI.replace('/', "&#x2f;"))) || html.contains(REDIRECT_URI),
        "{html}"
    );
    assert!(hidden_input(&html, "code").is_some());
    assert_eq!(hidden_input(&html, "state").as_deref(), Some("state-123"));
}

#[tokio::test]
async fn a_used_sign_in_page_cannot_be_posted_twice() {
    let emulator = emulator_with(|c| c.admin_consent = true).await;
    let browser = browser();
    let html = browser.get(AuthorizeRequest::new().url(&emulator)).send().await.unwrap().text().await.unwrap();
    let ctx = hidden_input(&html, "ctx").unwrap();
    let login_url = format!("{}/login", emulator.authority());
    let form = [("ctx", ctx.as_str()), ("loginfmt", ADELE), ("passwd", ADELE_PASSWORD)];
    assert_eq!(post_form(&browser, &login_url, &form).await.status(), StatusCode::FOUND);
    assert_eq!(post_form(&browser, &login_url, &form).await.status(), StatusCode::BAD_REQUEST);
}
