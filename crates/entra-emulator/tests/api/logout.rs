use std::sync::{Arc, Mutex};

use crate::helpers::*;
use axum::extract::RawQuery;
use axum::routing::get;
use reqwest::StatusCode;

#[tokio::test]
async fn logout_ends_the_sso_session_and_redirects_only_to_registered_uris() {
    let emulator = emulator().await;
    let browser = browser();
    code_for_adele(&browser, &emulator).await;
    let logout_url = format!("{}/oauth2/v2.0/logout", emulator.authority());

    let response = browser
        .get(&logout_url)
        .query(&[("post_logout_redirect_uri", "http://localhost:5001/"), ("state", "bye")])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::FOUND);
    assert_eq!(location(&response).as_str(), "http://localhost:5001/?state=bye");

    let again = browser.get(AuthorizeRequest::new().url(&emulator)).send().await.unwrap();
    assert_eq!(again.status(), StatusCode::OK, "signed out: the password is asked again");
    assert!(again.text().await.unwrap().contains("idSIButton9"));

    let unregistered = browser
        .get(&logout_url)
        .query(&[("post_logout_redirect_uri", "https://evil.example/")])
        .send()
        .await
        .unwrap();
    assert_eq!(unregistered.status(), StatusCode::OK);
    assert!(unregistered.headers().get("location").is_none());
    assert!(unregistered.text().await.unwrap().contains("not registered"));
}

#[tokio::test]
async fn logout_calls_the_front_channel_logout_url_with_sid() {
    let calls: Arc<Mutex<Vec<String>>> = Arc::default();
    let recorded = calls.clone();
    let app = axum::Router::new().route(
        "/frontchannel",
        get(move |RawQuery(query): RawQuery| {
            let recorded = recorded.clone();
            async move {
                recorded.lock().unwrap().push(query.unwrap_or_default());
                "ok"
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let app_addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await });

    let emulator = emulator().await;
    emulator.update_client(&client_id(), |client| {
        client.front_channel_logout_url = Some(format!("http://{app_addr}/frontchannel"));
    });
    let browser = browser();
    let request = AuthorizeRequest::new();
    let response = sign_in_as(&browser, &emulator, &request, ADELE, ADELE_PASSWORD).await;
    let sid = query_param(&location(&response), "session_state").unwrap();

    let logout_url = format!("{}/oauth2/v2.0/logout", emulator.authority());
    browser.post(&logout_url).form(&[("post_logout_redirect_uri", "http://localhost:5001/")]).send().await.unwrap();

    let calls = calls.lock().unwrap().clone();
    assert_eq!(calls.len(), 1, "{calls:?}");
    assert!(calls[0].contains(&format!("sid={sid}")), "{calls:?}");
    assert!(calls[0].contains("iss="), "{calls:?}");
}
