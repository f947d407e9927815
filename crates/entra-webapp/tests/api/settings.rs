//! The binary itself: bad settings stop start-up with exit code 2 and name every variable.

use std::process::Command;

fn serve(env: &[(&str, &str)]) -> (i32, String) {
    let dir = tempfile::tempdir().unwrap();
    let output = Command::new(env!("CARGO_BIN_EXE_entra-webapp"))
        .arg("serve")
        .env_clear()
        .envs(env.iter().copied())
        .current_dir(dir.path())
        .output()
        .unwrap();
    (output.status.code().unwrap_or(-1), String::from_utf8_lossy(&output.stderr).into_owned())
}

#[test]
fn missing_settings_exit_2_naming_every_variable() {
    let (code, stderr) = serve(&[]);
    assert_eq!(code, 2, "{stderr}");
    for variable in ["TENANT_ID", "CLIENT_ID", "REDIRECT_URI"] {
        assert!(stderr.contains(&format!("{variable}: is not set")), "{variable} in {stderr}");
    }
    assert!(stderr.contains("CLIENT_SECRET: no client credential is set"), "{stderr}");
    assert!(!stderr.contains("demo"), "serve never falls back to the demo");
}

#[test]
fn malformed_settings_exit_2_naming_every_variable() {
    let (code, stderr) = serve(&[
        ("TENANT_ID", "not a tenant"),
        ("CLIENT_ID", "abc"),
        ("CLIENT_SECRET", "@Microsoft.KeyVault(SecretUri=https://kv.vault.azure.net/secrets/s)"),
        ("REDIRECT_URI", "http://app.example/callback"),
        ("AUTHORITY_HOST", "not a url"),
        ("PORT", "99999"),
        ("LOG_FORMAT", "xml"),
    ]);
    assert_eq!(code, 2, "{stderr}");
    for variable in ["TENANT_ID", "CLIENT_ID", "CLIENT_SECRET", "REDIRECT_URI", "AUTHORITY_HOST", "PORT", "LOG_FORMAT"]
    {
        assert!(stderr.contains(&format!("  - {variable}: ")), "{variable} in {stderr}");
    }
    assert!(stderr.contains("Entra ID rejects"), "{stderr}");
    assert!(stderr.contains("Key Vault"), "{stderr}");
}

#[test]
fn a_multi_tenant_authority_without_allowed_tenants_does_not_start() {
    let (code, stderr) = serve(&[
        ("TENANT_ID", "organizations"),
        ("CLIENT_ID", "3f1c9a2e-8b4d-4c6f-a1e7-0d5b2c8e9f41"),
        ("CLIENT_SECRET", "s3cr3t"),
        ("REDIRECT_URI", "http://localhost:5001/callback"),
        ("ALLOWED_GROUPS", "Sales"),
    ]);
    assert_eq!(code, 2, "{stderr}");
    assert!(stderr.contains("  - ALLOWED_TENANTS: is required when TENANT_ID is common, organizations"), "{stderr}");
    assert!(stderr.contains("or set it to * to allow every tenant on purpose"), "{stderr}");
    assert!(stderr.contains("  - ALLOWED_GROUPS: 'Sales' is not a GUID"), "{stderr}");
}

/// Runs `serve` until it exits (at most 20 s: one that starts serving is killed and fails).
fn serve_expecting_exit(env: &[(&str, &str)]) -> (i32, String) {
    let dir = tempfile::tempdir().unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_entra-webapp"))
        .arg("serve")
        .env_clear()
        .envs(env.iter().copied())
        .current_dir(dir.path())
        .stderr(std::process::Stdio::piped())
        .stdout(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    while child.try_wait().unwrap().is_none() {
        if std::time::Instant::now() > deadline {
            child.kill().unwrap();
            panic!("started serving with {env:?}");
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    let output = child.wait_with_output().unwrap();
    (output.status.code().unwrap_or(-1), String::from_utf8_lossy(&output.stderr).into_owned())
}

#[test]
fn a_redirect_uri_whose_path_cannot_be_the_callback_stops_start_up_naming_it() {
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port().to_string();
    let base = [
        ("TENANT_ID", "7e6b1c4a-2f0d-4a8e-9c3b-5d1e8f2a6b90"),
        ("CLIENT_ID", "3f1c9a2e-8b4d-4c6f-a1e7-0d5b2c8e9f41"),
        ("CLIENT_SECRET", "s3cr3t"),
        ("PORT", port.as_str()),
    ];
    // One of our own routes (the home page, sign-in, a probe; in proxy mode Easy Auth's), or a
    // path the router would read as a parameter: a clear refusal, never a panic.
    let cases: [(&str, Option<&str>); 6] = [
        ("http://localhost:5001/", None),
        ("http://localhost:5001/login", None),
        ("http://localhost:5001/healthz", None),
        ("http://localhost:5001/.auth/me", Some("http://127.0.0.1:9")),
        ("http://localhost:5001/:callback", None),
        ("http://localhost:5001/auth/*rest", None),
    ];
    for (redirect_uri, upstream) in cases {
        let mut env = base.to_vec();
        env.push(("REDIRECT_URI", redirect_uri));
        if let Some(upstream) = upstream {
            env.push(("UPSTREAM_URL", upstream));
        }
        let (code, stderr) = serve_expecting_exit(&env);
        assert!(code == 1 || code == 2, "{redirect_uri}: exit {code}: {stderr}");
        assert!(stderr.contains("REDIRECT_URI: its path /"), "{redirect_uri}: {stderr}");
        assert!(stderr.contains("https://<site>/callback"), "{redirect_uri}: {stderr}");
        assert!(!stderr.contains("panicked"), "{redirect_uri}: {stderr}");
    }
}

#[test]
fn settings_come_from_a_dot_env_file_and_the_environment_wins() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join(".env"), "TENANT_ID=from-dot-env-is-invalid\nCLIENT_ID=also bad\n").unwrap();
    let output = Command::new(env!("CARGO_BIN_EXE_entra-webapp"))
        .arg("serve")
        .env_clear()
        .env("CLIENT_ID", "3f1c9a2e-8b4d-4c6f-a1e7-0d5b2c8e9f41")
        .current_dir(dir.path())
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(2));
    assert!(stderr.contains("'from-dot-env-is-invalid'"), ".env was read: {stderr}");
    assert!(!stderr.contains("  - CLIENT_ID:"), "the real environment won over .env: {stderr}");
}

#[test]
fn serve_help_lists_every_setting() {
    let output = Command::new(env!("CARGO_BIN_EXE_entra-webapp")).args(["serve", "--help"]).output().unwrap();
    let help = String::from_utf8_lossy(&output.stdout);
    for variable in [
        "TENANT_ID",
        "CLIENT_ID",
        "CLIENT_SECRET",
        "CLIENT_CERTIFICATE_PATH",
        "CLIENT_CERTIFICATE_THUMBPRINT",
        "MANAGED_IDENTITY_CLIENT_ID",
        "AZURE_FEDERATED_TOKEN_FILE",
        "REDIRECT_URI",
        "AUTHORITY_HOST",
        "GRAPH_ENDPOINT",
        "SCOPES",
        "PORT",
        "BIND_ADDRESS",
        "POST_LOGOUT_REDIRECT_URI",
        "SESSION_SECRET",
        "LOG_FORMAT",
        "RUST_LOG",
        "SESSION_STORE",
        "REDIS_PASSWORD",
        "MAX_SESSIONS",
        "SESSION_IDLE_MINUTES",
        "TRUST_FORWARDED_HEADERS",
        "METRICS_TOKEN",
        "PROXY_PASS_HOST_HEADER",
        "UPSTREAM_CA_FILE",
        "UPSTREAM_CLIENT_CERTIFICATE_PATH",
        "UPSTREAM_HTTP_VERSION",
        "UPSTREAM_CLIENT_CERTIFICATE_KEY_PATH",
        "UPSTREAM_CLIENT_CERTIFICATE_PASSWORD",
    ] {
        assert!(help.contains(&format!("env: {variable}")), "{variable} in {help}");
    }
}
