//! The floor for `scripts/bench.sh`'s proxy figures: the least an HTTP/1.1 reverse proxy built on
//! the crates ours uses (hyper's server, hyper-util's pooled client, tokio) can do per request,
//! with no sign-in, no headers added, no middleware. What it costs beyond the upstream bounds what
//! any proxy on this stack can reach; ours adds sessions and identity on top.
//!
//! `bare_proxy <listen port> <upstream origin>`, e.g. `bare_proxy 8081 http://127.0.0.1:8080`.

use std::convert::Infallible;

use axum::body::Body;
use axum::http::{Request, Response, StatusCode, Uri};
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::{TokioExecutor, TokioIo};

#[tokio::main]
async fn main() {
    let mut args = std::env::args().skip(1);
    let (Some(port), Some(upstream)) = (args.next(), args.next()) else {
        eprintln!("usage: bare_proxy <listen port> <upstream origin>");
        std::process::exit(2);
    };
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", port.parse::<u16>().expect("a port number")))
        .await
        .expect("the port is free");
    let upstream: Uri = upstream.parse().expect("an origin such as http://127.0.0.1:8080");
    let mut connector = HttpConnector::new();
    connector.set_nodelay(true);
    let client: Client<HttpConnector, Incoming> = Client::builder(TokioExecutor::new()).build(connector);
    loop {
        let Ok((stream, _)) = listener.accept().await else { continue };
        let _ = stream.set_nodelay(true);
        let (client, upstream) = (client.clone(), upstream.clone());
        tokio::spawn(async move {
            let service = service_fn(move |mut request: Request<Incoming>| {
                let client = client.clone();
                let mut parts = upstream.clone().into_parts();
                parts.path_and_query = request.uri().path_and_query().cloned();
                async move {
                    *request.uri_mut() = Uri::from_parts(parts).expect("origin and path make a URI");
                    Ok::<_, Infallible>(match client.request(request).await {
                        Ok(response) => response.map(Body::new),
                        Err(_) => {
                            Response::builder().status(StatusCode::BAD_GATEWAY).body(Body::empty()).expect("a 502")
                        }
                    })
                }
            });
            let _ = http1::Builder::new().serve_connection(TokioIo::new(stream), service).await;
        });
    }
}
