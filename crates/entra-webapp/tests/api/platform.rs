//! Behaving on App Service: forwarded headers only when trusted, and the release binary run the
//! way the container runs it (non-root, env-only settings, PORT, JSON logs, SIGTERM).

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use entra_emulator::{ClientRegistration, Emulator, EmulatorConfig};
use reqwest::StatusCode;

use crate::helpers::*;

async fn setup_origin(app: &TestApp) -> String {
    let html = app
        .browser
        .get(app.url("/setup"))
        .header("x-forwarded-proto", "https")
        .header("x-forwarded-host", "contoso-app.azurewebsites.net")
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let start = html.find("id=\"front-channel-logout-url\">").unwrap() + "id=\"front-channel-logout-url\">".len();
    html[start..start + html[start..].find('<').unwrap()].to_owned()
}

#[tokio::test]
async fn forwarded_headers_build_absolute_urls_only_when_trusted() {
    let trusting = spawn_app_with(Options { trust_forwarded_headers: true, ..Options::default() }).await;
    assert_eq!(setup_origin(&trusting).await, "https://contoso-app.azurewebsites.net/logout");

    let default = spawn_app().await;
    assert_eq!(setup_origin(&default).await, format!("{}/logout", default.base_url), "off: the headers change nothing");
    let html = default.page("/setup").await;
    assert!(html.contains(&format!("{}/callback", default.base_url)), "REDIRECT_URI is the configured one");
}

/// The binary the container runs: the release build when `ENTRA_WEBAPP_BIN` names it
/// (scripts/test.sh does), else the one cargo built for this test.
fn binary() -> String {
    std::env::var("ENTRA_WEBAPP_BIN").unwrap_or_else(|_| env!("CARGO_BIN_EXE_entra-webapp").to_owned())
}

/// As root, drop to `nobody` as the container's `USER` does; otherwise we are already not root.
fn as_non_root(binary: &str) -> Command {
    let is_root = Command::new("id").arg("-u").output().map(|o| o.stdout.starts_with(b"0\n")).unwrap_or(false);
    if is_root {
        let mut command = Command::new("setpriv");
        command.args(["--reuid=65534", "--regid=65534", "--clear-groups", "--"]).arg(binary);
        command
    } else {
        Command::new(binary)
    }
}

#[tokio::test]
async fn the_release_binary_runs_as_in_the_container_and_stops_cleanly_on_sigterm() {
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let base_url = format!("http://localhost:{port}");
    let client = ClientRegistration {
        redirect_uris: vec![format!("{base_url}/callback"), format!("{base_url}/")],
        ..ClientRegistration::default()
    };
    let emulator = Arc::new(
        Emulator::start(EmulatorConfig { clients: vec![client.clone()], ..EmulatorConfig::default() }).await.unwrap(),
    );

    let mut child = as_non_root(&binary())
        .arg("serve")
        .env_clear()
        .env("TENANT_ID", emulator.tenant_id().to_string())
        .env("CLIENT_ID", &client.client_id)
        .env("CLIENT_SECRET", client.client_secret.clone().unwrap())
        .env("REDIRECT_URI", format!("{base_url}/callback"))
        .env("AUTHORITY_HOST", emulator.base_url())
        .env("GRAPH_ENDPOINT", emulator.graph_endpoint())
        .env("PORT", port.to_string())
        .env("LOG_FORMAT", "json")
        .current_dir("/")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("the binary starts");
    let stdout = child.stdout.take().unwrap();
    let lines = std::sync::Arc::new(std::sync::Mutex::new(Vec::<String>::new()));
    let collected = lines.clone();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            collected.lock().unwrap().push(line);
        }
    });

    let app = TestApp::external(emulator.clone(), base_url.clone());
    let deadline = Instant::now() + Duration::from_secs(20);
    let health = loop {
        if let Ok(response) = app.browser.get(app.url("/healthz")).send().await {
            break response;
        }
        assert!(Instant::now() < deadline, "the binary did not answer on PORT");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert_eq!(health.status(), StatusCode::OK);
    let request_id = health.headers()["x-request-id"].to_str().unwrap().to_owned();

    app.sign_in_adele().await;

    // A slow request in flight when SIGTERM arrives still completes.
    emulator.faults().set_graph_latency(Duration::from_millis(1500));
    let graph_calls = emulator.graph_requests_received();
    let slow = tokio::spawn({
        let browser = app.browser.clone();
        let url = app.url("/profile");
        async move { browser.get(url).send().await.map(|r| r.status()) }
    });
    // SIGTERM only once the request is inside the app, waiting on Graph.
    let deadline = Instant::now() + Duration::from_secs(10);
    while emulator.graph_requests_received() == graph_calls {
        assert!(Instant::now() < deadline, "the slow request never reached Graph");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let terminated_at = Instant::now();
    Command::new("kill").args(["-TERM", &child.id().to_string()]).status().unwrap();
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        assert!(terminated_at.elapsed() < Duration::from_secs(5), "exits within 5 s of SIGTERM");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert_eq!(status.code(), Some(0), "exit code 0");
    assert_eq!(slow.await.unwrap().expect("the in-flight request completed"), StatusCode::OK);

    let lines = lines.lock().unwrap().clone();
    assert!(!lines.is_empty());
    for line in &lines {
        let parsed: serde_json::Value = serde_json::from_str(line).unwrap_or_else(|_| panic!("not JSON: {line}"));
        assert!(parsed["level"].is_string());
    }
    let health_line = lines.iter().find(|l| l.contains(&request_id)).expect("a log line with the request id");
    assert!(health_line.contains("/healthz"), "{health_line}");
}

#[tokio::test]
async fn outbound_tls_trusts_the_ca_named_by_ssl_cert_file() {
    let ca_dir = tempfile::tempdir().unwrap();
    let options =
        entra_emulator::ListenOptions { tls_self_signed_dir: Some(ca_dir.path().to_path_buf()), ..Default::default() };
    let emulator = Emulator::start_with(EmulatorConfig::default(), options).await.unwrap();
    let ca_file = emulator.ca_pem_path().unwrap().to_path_buf();
    for trust in [true, false] {
        let mut command = Command::new(binary());
        command
            .arg("serve")
            .env_clear()
            .env("TENANT_ID", emulator.tenant_id().to_string())
            .env("CLIENT_ID", entra_emulator::DEFAULT_CLIENT_ID.to_string())
            .env("CLIENT_SECRET", entra_emulator::DEFAULT_CLIENT_SECRET)
            .env("REDIRECT_URI", "http://localhost:5001/callback")
            .env("AUTHORITY_HOST", emulator.base_url())
            .env("GRAPH_ENDPOINT", emulator.graph_endpoint())
            // The binary binds a free port itself and logs it: no port picked and hoped for.
            .env("PORT", "0")
            .env("BIND_ADDRESS", "127.0.0.1")
            .current_dir("/")
            .stdout(Stdio::piped())
            .stderr(Stdio::null());
        if trust {
            command.env("SSL_CERT_FILE", &ca_file);
        }
        let mut child = command.spawn().unwrap();
        // The logs say why the metadata could not be loaded; /readyz only says which dependency.
        let (lines_tx, lines_rx) = std::sync::mpsc::channel::<String>();
        let stdout = child.stdout.take().unwrap();
        std::thread::spawn(move || {
            use std::io::BufRead;
            for line in std::io::BufReader::new(stdout).lines().map_while(Result::ok) {
                let _ = lines_tx.send(line);
            }
        });
        let mut early_lines = Vec::new();
        let address = loop {
            let line = lines_rx.recv_timeout(Duration::from_secs(20)).expect("the binary logs where it listens");
            assert!(!line.contains('\x1b'), "no colour codes when stdout is not a terminal: {line:?}");
            if let Some(address) = line.split("address=").nth(1).filter(|_| line.contains("listening")) {
                break address.split_whitespace().next().unwrap_or_default().to_owned();
            }
            early_lines.push(line);
        };
        let client = reqwest::Client::builder().timeout(Duration::from_secs(5)).build().unwrap();
        let readyz = format!("http://{address}/readyz");
        let mut last = (StatusCode::IM_A_TEAPOT, String::new());
        let mut load_failure = None;
        for _ in 0..150 {
            if let Ok(response) = client.get(&readyz).send().await {
                last = (response.status(), response.text().await.unwrap());
            }
            load_failure = load_failure
                .or_else(|| early_lines.drain(..).find(|l| l.contains("cannot load tenant metadata yet")))
                .or_else(|| lines_rx.try_iter().find(|l| l.contains("cannot load tenant metadata yet")));
            if last.0 == StatusCode::OK || load_failure.is_some() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        if !trust {
            // Asked after the failure was logged: still not ready.
            last = client.get(&readyz).send().await.map(|r| (r.status(), String::new())).unwrap_or(last);
        }
        let _ = child.kill();
        let _ = child.wait();
        if trust {
            assert_eq!(last.0, StatusCode::OK, "SSL_CERT_FILE's CA is trusted: {}", last.1);
            assert!(load_failure.is_none(), "{load_failure:?}");
        } else {
            assert_eq!(last.0, StatusCode::SERVICE_UNAVAILABLE, "an unknown CA is not trusted");
            let failure = load_failure.expect("the failure to load the metadata is logged");
            assert!(failure.contains("cannot reach"), "{failure}");
        }
    }
}
