//! The proxy in front of an app that speaks TLS only (`https://` in `UPSTREAM_URL`): reached with
//! the CA of `UPSTREAM_CA_FILE`, every way the proxy forwards; refused when its certificate is
//! not one to trust, whatever it serves; presenting `UPSTREAM_CLIENT_CERTIFICATE_PATH`'s certificate
//! to an app that asks for one (mutual TLS), and refused by it without one it trusts.

use futures::{SinkExt, StreamExt};
use reqwest::StatusCode;
use serde_json::Value;

use crate::helpers::*;
use crate::proxy::{echo, header, open_websocket, proxy_with_options, sign_in_keeping_proxy_cookie};
use crate::upstream::{self, Upstream};

const HTML: &str = "text/html,application/xhtml+xml";

/// The app in front of `upstream`, trusting the CA of `ca_file` for it (when given), and
/// presenting the certificate of `certificate_file` (when given); `/public/*` open to anyone.
async fn proxy_over_tls(
    upstream: &Upstream,
    ca_file: Option<&std::path::Path>,
    certificate_file: Option<&std::path::Path>,
) -> TestApp {
    let [ca_file, certificate_file] =
        [ca_file, certificate_file].map(|file| file.map(|file| file.to_string_lossy().into_owned()));
    proxy_with_options(
        upstream,
        move |settings| {
            settings.upstream_ca_file = ca_file;
            settings.upstream_client_certificate_path = certificate_file;
            settings.proxy_anonymous_paths = Some("/public/*".into());
        },
        Options::default(),
    )
    .await
}

#[tokio::test]
async fn an_https_upstream_signed_by_the_named_ca_gets_every_request_and_the_identity() {
    let dir = tempfile::tempdir().unwrap();
    let ca_file = dir.path().join("upstream-ca.pem");
    let upstream = upstream::start_tls(&["localhost", "127.0.0.1"], &ca_file).await;
    assert!(upstream.url.starts_with("https://127.0.0.1:"));
    let app = proxy_over_tls(&upstream, Some(&ca_file), None).await;
    assert_eq!(app.readiness().await, (StatusCode::OK, "ready".to_owned()), "the handshake succeeds");

    // HTTP/1.1: the client connection's own upstream connection, over TLS.
    let cookie = sign_in_keeping_proxy_cookie(&app).await;
    let echoed = echo(&app, "/reports?q=1", &[]).await;
    assert_eq!(echoed["target"], "/reports?q=1");
    assert_eq!(header(&echoed, "x-ms-client-principal-name"), Some(ADELE));
    let upload = app.browser.post(app.url("/echo")).body(vec![b'x'; 1 << 20]).send().await.unwrap();
    assert_eq!(upload.json::<Value>().await.unwrap()["body_length"], 1 << 20, "a body, whole");

    // HTTP/2: the thread's pool, over TLS.
    let http2 = reqwest::Client::builder().http2_prior_knowledge().build().unwrap();
    let response = http2.get(app.url("/public/x")).send().await.unwrap();
    assert_eq!((response.status(), response.version()), (StatusCode::OK, reqwest::Version::HTTP_2));
    assert_eq!(response.json::<Value>().await.unwrap()["path"], "/public/x");

    // An upgrade: the pool's connection, taken for good.
    let mut socket = open_websocket(&app, &cookie).await;
    socket.send(tokio_tungstenite::tungstenite::Message::text("over tls")).await.unwrap();
    let reply = socket.next().await.unwrap().unwrap();
    assert_eq!(reply.into_text().unwrap().as_str(), "echo: over tls");
}

#[tokio::test]
async fn an_https_upstream_whose_certificate_is_not_trusted_or_not_its_own_gets_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let (ca_file, other_ca_file) = (dir.path().join("ca.pem"), dir.path().join("other-ca.pem"));
    // Signed by a CA nobody named: not among the system's CAs either.
    let unknown = upstream::start_tls(&["localhost", "127.0.0.1"], &ca_file).await;
    // Signed by the named CA, for another name than the upstream's address.
    let misnamed = upstream::start_tls(&["app.internal.example"], &other_ca_file).await;
    for (upstream, trusted) in
        [(&unknown, None), (&unknown, Some(other_ca_file.as_path())), (&misnamed, Some(&other_ca_file))]
    {
        let app = proxy_over_tls(upstream, trusted, None).await;
        let refused = app.browser.get(app.url("/public/page")).header("accept", HTML).send().await.unwrap();
        assert_eq!(refused.status(), StatusCode::BAD_GATEWAY, "{} trusting {trusted:?}", upstream.url);
        assert!(refused.text().await.unwrap().contains("The app is not answering"));
        let http2 = reqwest::Client::builder().http2_prior_knowledge().build().unwrap();
        let pooled = http2.get(app.url("/public/page")).send().await.unwrap();
        assert_eq!(pooled.status(), StatusCode::BAD_GATEWAY, "the pool checks it too");
        let not_ready = (StatusCode::SERVICE_UNAVAILABLE, "not ready: upstream unreachable".to_owned());
        assert_eq!(app.readiness().await, not_ready);
    }
}

/// An upstream that takes connections and then says nothing: a TLS handshake that never ends is
/// a failure to connect (502 after 5 s), on a connection of its own and through the pool alike,
/// not an upstream slow to answer (504 after `UPSTREAM_TIMEOUT_SECONDS`).
#[tokio::test]
async fn an_https_upstream_that_never_finishes_the_handshake_is_not_answering() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("https://{}", listener.local_addr().unwrap());
    let silent = tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((connection, _)) = listener.accept().await {
            held.push(connection);
        }
    });
    let app = spawn_app_with(Options {
        settings_change: Some(Box::new(move |settings, _| {
            settings.upstream_url = Some(url);
            settings.proxy_anonymous_paths = Some("/public/*".into());
            settings.upstream_timeout_seconds = "25".into();
        })),
        ..Options::default()
    })
    .await;
    let http1 = reqwest::Client::builder().http1_only().build().unwrap();
    let http2 = reqwest::Client::builder().http2_prior_knowledge().build().unwrap();
    let (own, pooled) = tokio::join!(http1.get(app.url("/public/x")).send(), http2.get(app.url("/public/x")).send());
    for (response, way) in [(own, "a connection of its own"), (pooled, "the pool")] {
        assert_eq!(response.unwrap().status(), StatusCode::BAD_GATEWAY, "{way}");
    }
    silent.abort();
}

/// A CA of clients' certificates.
struct ClientsCa(rcgen::CertifiedIssuer<'static, rcgen::KeyPair>);

impl ClientsCa {
    /// A new CA, its certificate written to `ca_file` (PEM).
    fn new(ca_file: &std::path::Path) -> Self {
        use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, DnType, IsCa, KeyPair};
        let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.distinguished_name.push(DnType::CommonName, "clients' CA");
        let ca = CertifiedIssuer::self_signed(params, KeyPair::generate().unwrap()).unwrap();
        std::fs::write(ca_file, ca.pem()).unwrap();
        Self(ca)
    }

    /// A certificate it signed for a client named `name`, written with its key to
    /// `certificate_file` (PEM).
    fn issue(&self, name: &str, certificate_file: &std::path::Path) {
        use rcgen::{CertificateParams, DnType, ExtendedKeyUsagePurpose, KeyPair};
        let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
        params.distinguished_name.push(DnType::CommonName, name);
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
        let key = KeyPair::generate().unwrap();
        let certificate = params.signed_by(&key, &self.0).unwrap();
        std::fs::write(certificate_file, format!("{}{}", certificate.pem(), key.serialize_pem())).unwrap();
    }
}

/// A CA (its certificate written to `ca_file`) and a certificate it signed for clients named
/// `name`, written with its key to `certificate_file` (PEM).
fn client_certificate(ca_file: &std::path::Path, name: &str, certificate_file: &std::path::Path) {
    ClientsCa::new(ca_file).issue(name, certificate_file);
}

#[tokio::test]
async fn an_upstream_asking_for_a_client_certificate_gets_the_proxys_every_way_it_forwards() {
    let dir = tempfile::tempdir().unwrap();
    let [ca_file, client_ca_file, certificate_file] =
        ["ca.pem", "client-ca.pem", "proxy.pem"].map(|name| dir.path().join(name));
    client_certificate(&client_ca_file, "entra-webapp proxy", &certificate_file);
    // TLS 1.3, then 1.2 (where the certificate is asked for within the handshake: older servers).
    for tls_1_2 in [false, true] {
        let upstream = match tls_1_2 {
            false => upstream::start_mutual_tls(&["127.0.0.1"], &ca_file, &client_ca_file).await,
            true => upstream::start_mutual_tls_1_2(&["127.0.0.1"], &ca_file, &client_ca_file).await,
        };
        let app = proxy_over_tls(&upstream, Some(&ca_file), Some(&certificate_file)).await;
        let ready = (StatusCode::OK, "ready".to_owned());
        assert_eq!(app.readiness().await, ready, "the certificate is accepted (TLS 1.2: {tls_1_2})");

        // HTTP/1.1: the client connection's own upstream connection.
        sign_in_keeping_proxy_cookie(&app).await;
        let echoed = echo(&app, "/reports", &[]).await;
        assert!(echoed["client_certificate"].as_str().unwrap().contains("CN=entra-webapp proxy"), "{echoed}");
        assert_eq!(header(&echoed, "x-ms-client-principal-name"), Some(ADELE));

        // HTTP/2: the thread's pool.
        let http2 = reqwest::Client::builder().http2_prior_knowledge().build().unwrap();
        let response = http2.get(app.url("/public/x")).send().await.unwrap();
        assert_eq!(response.status(), StatusCode::OK);
        let pooled: Value = response.json().await.unwrap();
        assert!(pooled["client_certificate"].as_str().unwrap().contains("CN=entra-webapp proxy"), "{pooled}");
    }
}

#[tokio::test]
async fn an_upstream_asking_for_a_client_certificate_gets_nothing_from_a_proxy_without_one_it_trusts() {
    let dir = tempfile::tempdir().unwrap();
    let [ca_file, client_ca_file, other_ca_file, other_certificate_file] =
        ["ca.pem", "client-ca.pem", "other-ca.pem", "other.pem"].map(|name| dir.path().join(name));
    client_certificate(&client_ca_file, "entra-webapp proxy", &dir.path().join("proxy.pem"));
    // The same name, from a CA the upstream does not trust.
    client_certificate(&other_ca_file, "entra-webapp proxy", &other_certificate_file);
    let upstream = upstream::start_mutual_tls(&["127.0.0.1"], &ca_file, &client_ca_file).await;
    for presented in [None, Some(other_certificate_file.as_path())] {
        let app = proxy_over_tls(&upstream, Some(&ca_file), presented).await;
        let refused = app.browser.get(app.url("/public/page")).header("accept", HTML).send().await.unwrap();
        assert_eq!(refused.status(), StatusCode::BAD_GATEWAY, "presenting {presented:?}");
        assert!(refused.text().await.unwrap().contains("The app is not answering"));
        let http2 = reqwest::Client::builder().http2_prior_knowledge().build().unwrap();
        let pooled = http2.get(app.url("/public/page")).send().await.unwrap();
        assert_eq!(pooled.status(), StatusCode::BAD_GATEWAY, "the pool, presenting {presented:?}");
        let not_ready = (StatusCode::SERVICE_UNAVAILABLE, "not ready: upstream unreachable".to_owned());
        assert_eq!(app.readiness().await, not_ready, "presenting {presented:?}");
    }
}

/// Certificates for mutual TLS are short-lived and renewed in place: the proxy presents the
/// renewed one from its next connection to the upstream, without a restart, and keeps the one it
/// has when the file it finds cannot be used (half written, say).
#[tokio::test]
async fn a_client_certificate_renewed_in_place_is_presented_from_the_next_connection() {
    let dir = tempfile::tempdir().unwrap();
    let [ca_file, client_ca_file, certificate_file] =
        ["ca.pem", "client-ca.pem", "proxy.pem"].map(|name| dir.path().join(name));
    let clients_ca = ClientsCa::new(&client_ca_file);
    clients_ca.issue("proxy before renewal", &certificate_file);
    let upstream = upstream::start_mutual_tls(&["127.0.0.1"], &ca_file, &client_ca_file).await;
    let app = proxy_over_tls(&upstream, Some(&ca_file), Some(&certificate_file)).await;
    // A new client connection each time: its own upstream connection, a new handshake.
    let presented = || async {
        let client = reqwest::Client::builder().http1_only().build().unwrap();
        let response = client.get(app.url("/public/x")).send().await.unwrap();
        assert_eq!(response.status(), StatusCode::OK);
        let echoed: Value = response.json().await.unwrap();
        echoed["client_certificate"].as_str().unwrap().to_owned()
    };
    assert!(presented().await.contains("CN=proxy before renewal"));

    clients_ca.issue("proxy after renewal", &certificate_file);
    // The files are looked at once a second at most.
    tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
    assert!(presented().await.contains("CN=proxy after renewal"), "renewed without a restart");

    std::fs::write(&certificate_file, "-----BEGIN CERTIFICATE-----\nhalf writ").unwrap();
    tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
    assert!(presented().await.contains("CN=proxy after renewal"), "the last good one, kept");
    assert_eq!(app.readiness().await, (StatusCode::OK, "ready".to_owned()));
}

/// A private CA's bundle is renewed in place too: the new CA added to `UPSTREAM_CA_FILE`, the
/// upstream's certificate moves to it, the old CA leaves. The proxy trusts the file's latest CAs
/// from its next connection, without a restart, and keeps those it has when the file it finds
/// cannot be used.
#[tokio::test]
async fn cas_renewed_in_place_are_trusted_from_the_next_connection() {
    let dir = tempfile::tempdir().unwrap();
    let [old_ca, new_ca, trusted] = ["old-ca.pem", "new-ca.pem", "trusted.pem"].map(|name| dir.path().join(name));
    let upstream = upstream::start_tls(&["127.0.0.1"], &old_ca).await;
    std::fs::copy(&old_ca, &trusted).unwrap();
    let app = proxy_over_tls(&upstream, Some(&trusted), None).await;
    // A new client connection each time: its own upstream connection, a new handshake.
    let status = || async {
        let client = reqwest::Client::builder().http1_only().build().unwrap();
        client.get(app.url("/public/x")).send().await.unwrap().status()
    };
    assert_eq!(status().await, StatusCode::OK);

    // The upstream moves to a certificate of a CA the file does not name yet: refused.
    let url = upstream.url.clone();
    drop(upstream);
    let upstream = upstream::start_tls_at(&url, &["127.0.0.1"], &new_ca).await;
    assert_eq!(status().await, StatusCode::BAD_GATEWAY, "a CA the file does not name");

    // The bundle gains the new CA (as its renewal would add it), then loses the old one.
    let bundle = [std::fs::read_to_string(&old_ca).unwrap(), std::fs::read_to_string(&new_ca).unwrap()].concat();
    std::fs::write(&trusted, bundle).unwrap();
    // The file is looked at once a second at most.
    tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
    assert_eq!(status().await, StatusCode::OK, "trusted without a restart");
    std::fs::copy(&new_ca, &trusted).unwrap();
    tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
    assert_eq!(status().await, StatusCode::OK);
    assert_eq!(app.readiness().await, (StatusCode::OK, "ready".to_owned()));

    // Every renewal is read, not only the first: the next CA, added to the bundle later.
    let third_ca = dir.path().join("third-ca.pem");
    drop(upstream);
    let upstream = upstream::start_tls_at(&url, &["127.0.0.1"], &third_ca).await;
    assert_eq!(status().await, StatusCode::BAD_GATEWAY, "a CA the file does not name yet");
    let bundle = [std::fs::read_to_string(&new_ca).unwrap(), std::fs::read_to_string(&third_ca).unwrap()].concat();
    std::fs::write(&trusted, bundle).unwrap();
    tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
    assert_eq!(status().await, StatusCode::OK, "the second renewal trusted too");

    // Half written: the CAs before are kept.
    std::fs::write(&trusted, "-----BEGIN CERTIFICATE-----\nhalf writ").unwrap();
    tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
    assert_eq!(status().await, StatusCode::OK, "the last good CAs, kept");
    drop(upstream);
}

/// In TLS 1.3 a server may refuse a client only after the handshake, and one that does may just
/// hang up: `/readyz` waits for the server's word after the handshake, and a hang-up is "not
/// ready".
#[tokio::test]
async fn an_https_upstream_that_hangs_up_after_the_handshake_is_not_ready() {
    let dir = tempfile::tempdir().unwrap();
    let ca_file = dir.path().join("ca.pem");
    let (url, hanging_up) = upstream::start_hanging_up_after_the_handshake(&["127.0.0.1"], &ca_file).await;
    let ca = ca_file.to_string_lossy().into_owned();
    let app = spawn_app_with(Options {
        settings_change: Some(Box::new(move |settings, _| {
            settings.upstream_url = Some(url);
            settings.upstream_ca_file = Some(ca);
        })),
        ..Options::default()
    })
    .await;
    let not_ready = (StatusCode::SERVICE_UNAVAILABLE, "not ready: upstream unreachable".to_owned());
    assert_eq!(app.readiness().await, not_ready);
    hanging_up.abort();
}
