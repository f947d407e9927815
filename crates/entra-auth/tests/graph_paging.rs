//! Graph's membership paging (groups overage) follows `@odata.nextLink` only on the Graph endpoint
//! it was given: a link elsewhere, on another origin or on another path of the same origin, is
//! refused before the user's token is sent there. The Graph here is a hostile one of the test's
//! own (the emulator's links are always its own), over real TCP.

#![allow(clippy::unwrap_used, reason = "a test fails on the spot")]

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use axum::Json;
use axum::Router;
use axum::extract::State;
use axum::http::HeaderMap;
use axum::routing::get;
use entra_auth::{GraphClient, GraphError};
use secrecy::SecretString;
use serde_json::{Value, json};

/// Serves `router` on a free loopback port; returns its base URL.
async fn serve(router: Router) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, router).await });
    format!("http://{address}")
}

/// Counts the requests that carried a bearer token.
fn counting_bearers(counter: Arc<AtomicUsize>) -> Router {
    Router::new()
        .fallback(|State(counter): State<Arc<AtomicUsize>>, headers: HeaderMap| async move {
            if headers.contains_key("authorization") {
                counter.fetch_add(1, Ordering::SeqCst);
            }
            Json(json!({ "value": [] }))
        })
        .with_state(counter)
}

fn group(id: &str) -> Value {
    json!({ "@odata.type": "#microsoft.graph.group", "id": id })
}

/// A Graph at `{base}/graph` whose first page of `transitiveMemberOf` links to `next(base)`,
/// whose second page ends the list, and whose `/elsewhere/*` and `/graph-elsewhere/*` count
/// bearer requests.
async fn hostile_graph(next: impl FnOnce(&str) -> String, stolen: Arc<AtomicUsize>) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let first_page = json!({ "value": [group("g1")], "@odata.nextLink": next(&base) });
    let router = Router::new()
        .route("/graph/v1.0/me/transitiveMemberOf", get(move || async move { Json(first_page) }))
        .route("/graph/v1.0/page2", get(|| async { Json(json!({ "value": [group("g2")] })) }))
        .nest("/elsewhere", counting_bearers(stolen.clone()))
        .nest("/graph-elsewhere", counting_bearers(stolen));
    tokio::spawn(async move { axum::serve(listener, router).await });
    base
}

async fn member_group_ids(base: &str) -> Result<Vec<String>, GraphError> {
    let endpoint = url::Url::parse(&format!("{base}/graph")).unwrap();
    let graph = GraphClient::new(reqwest::Client::new(), endpoint);
    graph.member_group_ids(&SecretString::from("the-users-token")).await
}

#[tokio::test]
async fn a_next_link_on_the_graph_endpoint_is_followed() {
    let stolen = Arc::new(AtomicUsize::new(0));
    let base = hostile_graph(|base| format!("{base}/graph/v1.0/page2"), stolen).await;
    assert_eq!(member_group_ids(&base).await.unwrap(), ["g1", "g2"]);
}

#[tokio::test]
async fn a_next_link_to_another_path_of_the_same_origin_is_refused_and_gets_no_token() {
    let stolen = Arc::new(AtomicUsize::new(0));
    for path in ["/elsewhere/v1.0/page2", "/graph-elsewhere/v1.0/page2"] {
        let base = hostile_graph(|base| format!("{base}{path}"), stolen.clone()).await;
        assert!(matches!(member_group_ids(&base).await, Err(GraphError::BadPaging)), "{path}");
    }
    assert_eq!(stolen.load(Ordering::SeqCst), 0, "the token went nowhere");
}

#[tokio::test]
async fn a_next_link_to_another_origin_is_refused_and_gets_no_token() {
    let stolen = Arc::new(AtomicUsize::new(0));
    let elsewhere = serve(counting_bearers(stolen.clone())).await;
    let base = hostile_graph(|_| format!("{elsewhere}/graph/v1.0/page2"), Arc::new(AtomicUsize::new(0))).await;
    assert!(matches!(member_group_ids(&base).await, Err(GraphError::BadPaging)));
    assert_eq!(stolen.load(Ordering::SeqCst), 0, "the token went nowhere");
}
