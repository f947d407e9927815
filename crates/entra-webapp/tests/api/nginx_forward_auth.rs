//! docs/PROXY.md's nginx forward-auth example, run as written: a real nginx (scripts/test.sh
//! installs it) with the documented server block, only its ports changed, in front of the tests'
//! upstream, asking the proxy's `/.auth/verify`. In that setup nginx, not the proxy, forwards the
//! client's request, so the example itself must keep a client from posing as someone else.

use std::net::TcpStream;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use reqwest::StatusCode;
use serde_json::Value;

use crate::helpers::*;
use crate::upstream;

/// The fenced nginx block of docs/PROXY.md's "Behind nginx" section.
fn documented_server_block() -> String {
    let doc = include_str!("../../../../docs/PROXY.md");
    let section = &doc[doc.find("## Behind nginx").expect("docs/PROXY.md has a 'Behind nginx' section")..];
    let start = section.find("```nginx\n").expect("an nginx block") + "```nginx\n".len();
    section[start..][..section[start..].find("```").unwrap()].to_owned()
}

/// nginx running a config, stopped when dropped.
struct Nginx {
    port: u16,
    child: Child,
    _dir: tempfile::TempDir,
}

impl Drop for Nginx {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Nginx {
    /// The documented block with its ports replaced: nginx on a free loopback port, the proxy at
    /// `proxy` (`host:port`), the app at `app`.
    fn start(proxy: &str, app: &str) -> Self {
        let block = documented_server_block();
        for _ in 0..5 {
            let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
            let server = replace_once(&block, "listen 443 ssl;", &format!("listen 127.0.0.1:{port};"));
            let server = replace_once(&server, "server 127.0.0.1:5001;", &format!("server {proxy};"));
            let server =
                replace_once(&server, "proxy_pass http://127.0.0.1:8000;", &format!("proxy_pass http://{app};"));
            let dir = tempfile::tempdir().unwrap();
            let path = dir.path().display();
            let config = format!(
                // One process, no master: killing it stops nginx whole (a killed master leaves
                // its workers serving).
                "master_process off;\npid {path}/nginx.pid;\nerror_log {path}/error.log;\nevents {{ worker_connections 64; }}\n\
                 http {{\naccess_log off;\nclient_body_temp_path {path}/body;\nproxy_temp_path {path}/proxy;\n\
                 fastcgi_temp_path {path}/fastcgi;\nuwsgi_temp_path {path}/uwsgi;\nscgi_temp_path {path}/scgi;\n{server}}}\n"
            );
            std::fs::write(dir.path().join("nginx.conf"), config).unwrap();
            let mut child = Command::new(nginx_binary())
                .arg("-p")
                .arg(dir.path())
                .arg("-c")
                .arg(dir.path().join("nginx.conf"))
                .args(["-g", "daemon off;"])
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .expect("nginx runs (scripts/test.sh installs it)");
            let deadline = Instant::now() + Duration::from_secs(10);
            while Instant::now() < deadline {
                if child.try_wait().ok().flatten().is_some() {
                    break; // exited: the port was taken (or the config is wrong: the last try says)
                }
                if TcpStream::connect(("127.0.0.1", port)).is_ok() {
                    return Self { port, child, _dir: dir };
                }
                std::thread::sleep(Duration::from_millis(20));
            }
            let _ = child.kill();
            let _ = child.wait();
            let log = std::fs::read_to_string(dir.path().join("error.log")).unwrap_or_default();
            eprintln!("nginx did not start on port {port}: {log}");
        }
        panic!("nginx did not start on any of 5 free ports");
    }

    fn url(&self, path: &str) -> String {
        // `localhost`, as the proxy's own URL: the browser's cookie for it goes to both ports.
        format!("http://localhost:{}{path}", self.port)
    }
}

/// `nginx` from the PATH, else Debian's (in /usr/sbin, which a non-root PATH may lack).
fn nginx_binary() -> std::path::PathBuf {
    let on_path = std::env::var_os("PATH")
        .and_then(|path| std::env::split_paths(&path).map(|dir| dir.join("nginx")).find(|binary| binary.is_file()));
    on_path.unwrap_or_else(|| "/usr/sbin/nginx".into())
}

fn replace_once(text: &str, from: &str, to: &str) -> String {
    assert_eq!(text.matches(from).count(), 1, "the documented block has `{from}` once");
    text.replace(from, to)
}

/// Every identity header the proxy sends, as a client would forge them, with and without
/// underscores.
const FORGED: [(&str, &str); 10] = [
    ("x-ms-client-principal", "eyJhdXRoX3R5cCI6ImFhZCIsImNsYWltcyI6W119"),
    ("x-ms-client-principal-name", "admin@evil.test"),
    ("x-ms-client-principal-id", "00000000-0000-0000-0000-000000000000"),
    ("x-ms-client-principal-idp", "evil"),
    ("x-forwarded-user", "admin"),
    ("x-forwarded-email", "admin@evil.test"),
    ("x-ms-token-aad-access-token", "forged"),
    ("x-ms-token-aad-id-token", "forged"),
    ("x_ms_client_principal_id", "00000000-0000-0000-0000-000000000000"),
    ("x_forwarded_user", "admin"),
];

/// The tests' upstream, the proxy, and nginx with the documented block in front of both.
async fn nginx_in_front() -> (upstream::Upstream, TestApp, Nginx) {
    let upstream = upstream::start().await;
    let app_address = upstream.url.trim_start_matches("http://").to_owned();
    let app = spawn_app_with(Options {
        settings_change: Some(Box::new(move |settings, _| {
            settings.upstream_url = Some(format!("http://{app_address}"))
        })),
        ..Options::default()
    })
    .await;
    let proxy_address = app.base_url.trim_start_matches("http://").replace("localhost", "127.0.0.1");
    let nginx = Nginx::start(&proxy_address, upstream.url.trim_start_matches("http://"));
    (upstream, app, nginx)
}

#[tokio::test]
async fn the_documented_nginx_example_passes_only_the_proxys_identity() {
    let (_upstream, app, nginx) = nginx_in_front().await;
    let get = |path: &str| {
        let mut request = app.browser.get(nginx.url(path));
        for (name, value) in FORGED {
            request = request.header(name, value);
        }
        request.send()
    };

    // Anonymous, forged headers or not: sent to sign in, coming back to the whole path and query
    // (`&` included), and nothing reaches the app.
    let anonymous = get("/reports?year=2026&team=a%20b").await.unwrap();
    assert_eq!(anonymous.status(), StatusCode::FOUND);
    let sign_in = location(&anonymous);
    assert!(sign_in.starts_with(&nginx.url("/login?")), "{sign_in}");
    assert_eq!(query_param(&sign_in, "return_to").as_deref(), Some("/reports?year=2026&team=a%20b"));

    app.sign_in_adele().await;
    let response = get("/reports").await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let echoed: Value = response.json().await.unwrap();
    let one = |name: &str| -> Option<String> {
        let values = echoed["headers"][name].as_array()?;
        assert_eq!(values.len(), 1, "{name} once: {echoed}");
        values[0].as_str().map(str::to_owned)
    };
    let oid = app.emulator.user_object_id(ADELE).unwrap().to_string();
    assert_eq!(one("x-ms-client-principal-id"), Some(oid), "{echoed}");
    assert_eq!(one("x-ms-client-principal-name").as_deref(), Some(ADELE));
    assert_eq!(one("x-ms-client-principal-idp").as_deref(), Some("aad"));
    assert_eq!(one("x-forwarded-user").as_deref(), Some(ADELE));
    assert_eq!(one("x-forwarded-email").as_deref(), Some("adele.vance@emulator.test"));
    let principal = one("x-ms-client-principal").unwrap();
    assert_ne!(principal, FORGED[0].1, "the proxy's principal, not the forged one");
    let names: Vec<&String> = echoed["headers"].as_object().unwrap().keys().collect();
    assert!(!names.iter().any(|name| name.starts_with("x-ms-token-") || name.contains('_')), "{names:?}");
}

/// nginx asks forward auth with a `GET` whatever the request was: the documented block passes the
/// method (`X-Forwarded-Method`), so a post that another origin's page had the browser send is
/// refused there too, before it reaches the app.
#[tokio::test]
async fn through_the_documented_nginx_example_another_origins_pages_cannot_post_as_the_user() {
    let (_upstream, app, nginx) = nginx_in_front().await;
    app.sign_in_adele().await;
    let post = |site: &'static str| {
        app.browser
            .post(nginx.url("/transfer"))
            .header("sec-fetch-site", site)
            .header("origin", "http://localhost:1")
            .body("amount=100")
            .send()
    };
    assert_eq!(post("same-site").await.unwrap().status(), StatusCode::FORBIDDEN);
    assert_eq!(post("cross-site").await.unwrap().status(), StatusCode::FORBIDDEN);
    let own = post("same-origin").await.unwrap();
    assert_eq!(own.status(), StatusCode::OK);
    let echoed: Value = own.json().await.unwrap();
    assert_eq!(echoed["method"], "POST");
    assert_eq!(echoed["headers"]["x-ms-client-principal-name"][0], ADELE);
}
