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

    let unregistered =
        browser.get(&logout_url).query(&[("post_logout_redirect_uri", "https://evil.example/")]).send().await.unwrap();
    assert_eq!(unregistered.status(), StatusCode::OK);
    assert!(unregistered.headers().get("location").is_none());
    assert!(unregistered.text().await.unwrap().contains("not a redirect URI of any application"));
}

#[tokio::test]
async fn logout_frames_the_front_channel_logout_url_with_sid_and_iss() {
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
    let page =
        browser.post(&logout_url).form(&[("post_logout_redirect_uri", "http://localhost:5001/")]).send().await.unwrap();
    assert_eq!(page.status(), StatusCode::OK, "the signed-out page, which frames the client's logout URL");
    let html = page.text().await.unwrap();
    assert!(
        html.contains(r#"http-equiv="refresh""#) && html.contains("localhost:5001"),
        "then on to the post-logout URI: {html}"
    );
    assert!(calls.lock().unwrap().is_empty(), "Entra does not call it server-side: the browser loads the iframe");
    let frames: Vec<String> = html
        .split("<iframe")
        .skip(1)
        .filter_map(|tag| {
            tag.split("src=\"").nth(1)?.split('"').next().map(|src| src.replace("&amp;", "&").replace("&#38;", "&"))
        })
        .collect();
    assert_eq!(frames.len(), 1, "{html}");
    assert_eq!(http().get(&frames[0]).send().await.unwrap().status(), StatusCode::OK);

    let calls = calls.lock().unwrap().clone();
    assert_eq!(calls.len(), 1, "{calls:?}");
    assert!(calls[0].contains(&format!("sid={sid}")), "{calls:?}");
    assert!(calls[0].contains("iss="), "{calls:?}");
}
