//! `entra-webapp demo`: the emulator in-process plus the app, both on loopback, with test users.

use std::process::ExitCode;

use entra_emulator::{ClientRegistration, Emulator, EmulatorConfig};
use tokio::net::TcpListener;

use crate::config::{LogFormat, Settings};
use crate::startup::Application;
use crate::{shutdown, telemetry};

/// Runs the demo until Ctrl-C; with `upstream`, in proxy mode in front of that app.
pub async fn run(port: u16, upstream: Option<String>) -> ExitCode {
    telemetry::init(LogFormat::Text, "info,entra_emulator=warn");
    let listener = match TcpListener::bind(("127.0.0.1", port)).await {
        Ok(listener) => listener,
        Err(err) => {
            eprintln!("entra-webapp demo: cannot listen on 127.0.0.1:{port}: {err}. Pick another port with PORT=5002.");
            return ExitCode::from(1);
        }
    };
    let port = listener.local_addr().map(|a| a.port()).unwrap_or(port);
    // `localhost` for the app and 127.0.0.1 for the emulator keep their cookies apart, as two
    // real sites' would be.
    let app_url = format!("http://localhost:{port}");
    let client = ClientRegistration {
        // Sign-out comes back to the callback too: one redirect URI, as on a real registration.
        redirect_uris: vec![format!("{app_url}/callback")],
        ..ClientRegistration::default()
    };
    let emulator =
        match Emulator::start(EmulatorConfig { clients: vec![client.clone()], ..EmulatorConfig::default() }).await {
            Ok(emulator) => emulator,
            Err(err) => {
                eprintln!("entra-webapp demo: cannot start the emulator: {err:#}");
                return ExitCode::from(1);
            }
        };
    let metrics_token = random_token();
    let settings = Settings {
        tenant_id: Some(emulator.tenant_id().to_string()),
        client_id: Some(client.client_id.clone()),
        client_secret: client.client_secret.clone(),
        redirect_uri: Some(format!("{app_url}/callback")),
        authority_host: emulator.base_url(),
        graph_endpoint: emulator.graph_endpoint(),
        port: port.to_string(),
        bind_address: "127.0.0.1".to_owned(),
        upstream_url: upstream.clone(),
        // The app registration exposes an API of its own (the emulator serves it): /downstream
        // calls it, asking consent for it only then.
        downstream_api_url: Some(emulator.api_endpoint(&client.client_id)),
        downstream_api_scopes: Some(format!("api://{}/access_as_user", client.client_id)),
        metrics_token: Some(metrics_token.clone()),
        ..Settings::default()
    };
    let config = match settings.validate() {
        Ok(config) => config,
        Err(err) => {
            eprintln!("{err}");
            return ExitCode::from(2);
        }
    };
    let app = match Application::with_listener(config, listener) {
        Ok(app) => app,
        Err(err) => {
            eprintln!("entra-webapp demo: {err:#}");
            return ExitCode::from(1);
        }
    };
    println!();
    match &upstream {
        Some(upstream) => println!(
            "  entra-webapp demo is running in front of {upstream}. Open {app_url}/ and sign in with a test user:"
        ),
        None => println!("  entra-webapp demo is running. Open {app_url}/ and sign in with a test user:"),
    }
    for user in emulator.users() {
        println!("    {:<24} password: {:<18} ({})", user.user_principal_name, user.password, user.display_name);
    }
    println!("  Emulated Entra ID tenant: {}   (Ctrl-C stops both)", emulator.authority());
    println!("  Metrics: curl -H 'Authorization: Bearer {metrics_token}' {app_url}/metrics");
    println!();
    let result = shutdown::serve_until_signal(app).await;
    emulator.shutdown().await;
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("entra-webapp demo: {err}");
            ExitCode::from(1)
        }
    }
}

/// A fresh `METRICS_TOKEN` for this run (printed for the person running the demo).
fn random_token() -> String {
    use base64::Engine;
    use rand::RngCore;
    let mut bytes = [0u8; 32];
    rand::rngs::OsRng.fill_bytes(&mut bytes);
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}
