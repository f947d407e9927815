//! Settings: read from the environment (and `.env`), parsed once into types, every problem
//! reported at once with the variable's name and the fix.

//!
//! Each concern validates its own settings into its own part (`entra`, `listener`, `sessions`,
//! `logging`) and notes its problems in one shared list; [`AppConfig`] composes the parts.

use entra_auth::EntraConfig;

mod access;
mod credential;
mod entra;
mod listener;
mod logging;
mod metrics;
mod own_routes;
mod path_rules;
mod problems;
mod proxy;
mod sessions;
mod settings;
mod upstream_tls;

pub use access::AccessConfig;
pub use listener::{ListenerConfig, ServerLimits};
pub use logging::{LogFormat, LoggingConfig};
pub use own_routes::OwnRoutes;
pub use path_rules::{PathRule, guards, may_reach};
pub use problems::{ConfigErrors, ConfigProblem};
pub use proxy::{PathPattern, ProxyConfig, UnauthenticatedAction};
pub use sessions::{SessionStoreConfig, SessionsConfig};
pub use settings::Settings;
pub use upstream_tls::{
    CaFile, ClientCertificateFiles, FilesFingerprint, SettingProblem, UpstreamClientCertificate, UpstreamRoots,
};

use crate::config::problems::Problems;
/// The validated configuration, by concern. Its `Debug` shows secrets as `[REDACTED]`.
#[derive(Debug)]
pub struct AppConfig {
    /// The relying party (entra-auth's own configuration).
    pub entra: EntraConfig,
    /// Where and how to listen.
    pub listener: ListenerConfig,
    /// Session store, keys and lifetimes.
    pub sessions: SessionsConfig,
    /// Log format and filter.
    pub logging: LoggingConfig,
    /// Who may come in.
    pub access: AccessConfig,
    /// Proxy mode: the app to protect (`UPSTREAM_URL`), when set.
    pub proxy: Option<ProxyConfig>,
    /// A downstream API called as the user (`DOWNSTREAM_API_URL`, `DOWNSTREAM_API_SCOPES`).
    pub downstream_api: Option<(url::Url, entra_auth::ResourceScopes)>,
    /// The bearer token `/metrics` asks for (`METRICS_TOKEN`); no `/metrics` without one.
    pub metrics_token: Option<secrecy::SecretString>,
}

impl AppConfig {
    /// Whether the app is reached over https (cookies get `Secure` and `__Host-`).
    pub fn is_https(&self) -> bool {
        self.entra.redirect_uri.scheme() == "https"
    }

    /// Where our own routes are (`PROXY_OWN_ROUTES` in proxy mode; at the root otherwise).
    pub fn own_routes(&self) -> OwnRoutes {
        self.proxy.as_ref().map_or(OwnRoutes::Root, |proxy| proxy.own_routes)
    }
}

impl Settings {
    /// Parses and validates everything, reporting every problem at once.
    pub fn validate(&self) -> Result<AppConfig, ConfigErrors> {
        let mut problems = Problems(Vec::new());
        let entra = entra::validate(self, &mut problems);
        let listener = listener::validate(self, &mut problems);
        let sessions = sessions::validate(self, &mut problems);
        let logging = logging::validate(self, &mut problems);
        let access = access::validate(self, &mut problems);
        let proxy = proxy::validate(self, &mut problems);
        let downstream_api = entra::downstream_api(self, &mut problems);
        let metrics_token = metrics::validate(self, &mut problems);
        if let (Some(listener), Some(Some(proxy))) = (&listener, &proxy) {
            proxy::refuse_own_address(&proxy.upstream, listener, &mut problems);
        }
        match (entra, listener, sessions, logging, access, proxy, downstream_api, metrics_token) {
            (
                Some(entra),
                Some(listener),
                Some(sessions),
                Some(logging),
                Some(access),
                Some(proxy),
                Some(downstream_api),
                Some(metrics_token),
            ) if problems.0.is_empty() => {
                let entra = match &access.allowed_tenants {
                    Some(tenants) => entra.with_allowed_tenants(tenants.iter().copied()),
                    None => entra,
                };
                // In front of another app nobody shows the Graph profile (a Graph outage then
                // cannot fail sign-in), and the ID token is kept only to be passed on.
                let entra = match &proxy {
                    Some(proxy) => {
                        // The email comes from the ID token then: ask for it.
                        let mut scopes = entra.scopes.clone();
                        if !scopes.iter().any(|scope| scope == "email") {
                            scopes.push("email".to_owned());
                        }
                        entra.with_profile_at_sign_in(false).with_id_token_kept(proxy.pass_tokens).with_scopes(scopes)
                    }
                    None => entra,
                };
                Ok(AppConfig { entra, listener, sessions, logging, access, proxy, downstream_api, metrics_token })
            }
            _ => Err(ConfigErrors(problems.0)),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    fn valid() -> Settings {
        Settings {
            tenant_id: Some("7e6b1c4a-2f0d-4a8e-9c3b-5d1e8f2a6b90".into()),
            client_id: Some("3f1c9a2e-8b4d-4c6f-a1e7-0d5b2c8e9f41".into()),
            client_secret: Some("s3cr3t".into()),
            redirect_uri: Some("https://app.example/callback".into()),
            ..Settings::default()
        }
    }

    fn variables(errors: ConfigErrors) -> Vec<&'static str> {
        errors.0.iter().map(|p| p.variable).collect()
    }

    #[test]
    fn valid_settings_parse_and_derive_the_post_logout_uri() {
        let config = valid().validate().unwrap();
        assert_eq!(
            config.entra.post_logout_redirect_uri.as_str(),
            "https://app.example/callback",
            "the callback, where sign-out lands"
        );
        assert!(config.is_https());
    }

    /// Where the settings put our routes, or the settings they name as wrong.
    fn config_routes(settings: &Settings) -> Result<OwnRoutes, Vec<&'static str>> {
        settings.validate().map(|config| config.own_routes()).map_err(variables)
    }

    #[test]
    fn proxy_settings_are_checked_and_each_bad_one_named() {
        let proxy = |upstream: &str| Settings { upstream_url: Some(upstream.into()), ..valid() };
        let config = proxy("http://127.0.0.1:8000").validate().unwrap();
        let proxied = config.proxy.unwrap();
        assert_eq!(proxied.upstream.as_str(), "http://127.0.0.1:8000/");
        assert!(proxied.pass_host_header, "the client's Host by default");
        let tls = proxy("https://app.internal.example").validate().unwrap().proxy.unwrap();
        assert_eq!(tls.upstream.port_or_known_default(), Some(443));
        let own_host = Settings { proxy_pass_host_header: "false".into(), ..proxy("http://127.0.0.1:8000") };
        assert!(!own_host.validate().unwrap().proxy.unwrap().pass_host_header);
        let unclear = Settings { proxy_pass_host_header: "upstream".into(), ..proxy("http://127.0.0.1:8000") };
        assert_eq!(variables(unclear.validate().unwrap_err()), vec!["PROXY_PASS_HOST_HEADER"]);
        assert!(!proxied.upstream_http2, "HTTP/1.1 to the upstream by default");
        let http2 = Settings { upstream_http_version: "2".into(), ..proxy("http://127.0.0.1:8000") };
        assert!(http2.validate().unwrap().proxy.unwrap().upstream_http2);
        assert_eq!(config_routes(&proxy("http://127.0.0.1:8000")), Ok(OwnRoutes::Root), "ours at the root by default");
        for under_auth in ["/.auth", "/.auth/", " /.auth "] {
            let settings = Settings { proxy_own_routes: under_auth.into(), ..proxy("http://127.0.0.1:8000") };
            assert_eq!(config_routes(&settings), Ok(OwnRoutes::UnderAuth), "{under_auth:?}");
        }
        for unclear in ["/auth", ".auth", "/.auth/x", "true"] {
            let settings = Settings { proxy_own_routes: unclear.into(), ..proxy("http://127.0.0.1:8000") };
            assert_eq!(config_routes(&settings), Err(vec!["PROXY_OWN_ROUTES"]), "{unclear:?}");
        }
        let http3 = Settings { upstream_http_version: "3".into(), ..proxy("http://127.0.0.1:8000") };
        assert_eq!(variables(http3.validate().unwrap_err()), vec!["UPSTREAM_HTTP_VERSION"]);
        // A private CA for an https:// upstream: read at start-up, refused where it would do nothing.
        let dir = tempfile::tempdir().unwrap();
        let ca = rcgen::generate_simple_self_signed(vec!["ca.test".to_owned()]).unwrap();
        let (ca_file, not_pem) = (dir.path().join("ca.pem"), dir.path().join("not.pem"));
        std::fs::write(&ca_file, ca.cert.pem()).unwrap();
        std::fs::write(&not_pem, "not a certificate").unwrap();
        let with_ca = |upstream: &str, file: &std::path::Path| Settings {
            upstream_ca_file: Some(file.to_string_lossy().into_owned()),
            ..proxy(upstream)
        };
        let roots = with_ca("https://app.internal.example", &ca_file).validate().unwrap().proxy.unwrap().upstream_roots;
        assert_eq!(roots.unwrap().loaded.len(), 1);
        for (upstream, file) in [
            ("http://127.0.0.1:8000", ca_file.as_path()),
            ("https://app.internal.example", not_pem.as_path()),
            ("https://app.internal.example", &dir.path().join("missing.pem")),
        ] {
            let errors = with_ca(upstream, file).validate().unwrap_err();
            assert_eq!(variables(errors), vec!["UPSTREAM_CA_FILE"], "{upstream} {}", file.display());
        }
        // Each breaks one rule only: http(s), no path, no query, no credentials (an http URL
        // always has a host).
        for bad in [
            "ftp://127.0.0.1:8000",
            "http://127.0.0.1:8000/app",
            "http://127.0.0.1:8000/?x=1",
            "http://user@127.0.0.1:8000",
            "not a url",
        ] {
            assert_eq!(variables(proxy(bad).validate().unwrap_err()), vec!["UPSTREAM_URL"], "{bad}");
        }
        // A path rule within an anonymous path would never apply: refused, naming the rule's setting.
        for (anonymous, roles, groups) in [
            ("/api/*", "/api/admin/*=Admin", ""),
            ("/API/*", "/api/admin/*=Admin", ""),
            ("/adm*", "/admin/*=Admin", ""),
            ("/reports", "/reports=Reader", ""),
            ("/static/*", "", "/static/finance/*=5a1e5000-0000-4000-8000-00000000a001"),
        ] {
            let settings = Settings {
                proxy_anonymous_paths: Some(anonymous.into()),
                proxy_path_roles: Some(roles.into()),
                proxy_path_groups: Some(groups.into()),
                ..proxy("http://127.0.0.1:8000")
            };
            let expected = if roles.is_empty() { "PROXY_PATH_GROUPS" } else { "PROXY_PATH_ROLES" };
            let errors = settings.validate().unwrap_err();
            // The message names both, as written (the rule lowercase, as it matches).
            let rule = format!("{roles}{groups}").split('=').next().unwrap().to_lowercase();
            let problem = &errors.0[0].problem;
            assert!(problem.contains(&format!("'{rule}'")) && problem.contains(&format!("'{anonymous}'")), "{problem}");
            assert_eq!(variables(errors), vec![expected], "{anonymous} {roles}{groups}");
        }
        // Open paths within a guarded area, or beside it, are what rules and anonymous paths are for.
        for (anonymous, roles) in [
            ("/admin/login", "/admin/*=Admin"),
            ("/api/public/*", "/api/admin/*=Admin"),
            ("/reports/*", "/reports=Reader"),
            ("/health", "/reports=Reader"),
        ] {
            let settings = Settings {
                proxy_anonymous_paths: Some(anonymous.into()),
                proxy_path_roles: Some(roles.into()),
                ..proxy("http://127.0.0.1:8000")
            };
            assert!(settings.validate().is_ok(), "{anonymous} {roles}");
        }
        for paths in ["static/*", "/st*tic/*", "/a?b", "/ok, nope"] {
            let settings = Settings { proxy_anonymous_paths: Some(paths.into()), ..proxy("http://127.0.0.1:8000") };
            assert_eq!(variables(settings.validate().unwrap_err()), vec!["PROXY_ANONYMOUS_PATHS"], "{paths}");
        }
        let paths =
            Settings { proxy_anonymous_paths: Some(" /health , /static/* ".into()), ..proxy("http://127.0.0.1:8000") };
        assert_eq!(paths.validate().unwrap().proxy.unwrap().anonymous_paths.len(), 2);
        for (seconds, ok) in [("1", true), ("3600", true), ("0", false), ("3601", false), ("soon", false)] {
            let settings = Settings { upstream_timeout_seconds: seconds.into(), ..proxy("http://127.0.0.1:8000") };
            match ok {
                true => assert_eq!(
                    settings.validate().unwrap().proxy.unwrap().response_timeout.as_secs().to_string(),
                    seconds
                ),
                false => assert_eq!(
                    variables(settings.validate().unwrap_err()),
                    vec!["UPSTREAM_TIMEOUT_SECONDS"],
                    "{seconds}"
                ),
            }
            let settings = Settings { proxy_websocket_check_seconds: seconds.into(), ..proxy("http://127.0.0.1:8000") };
            match ok {
                true => {
                    assert_eq!(settings.validate().unwrap().proxy.unwrap().session_check.as_secs().to_string(), seconds)
                }
                false => assert_eq!(
                    variables(settings.validate().unwrap_err()),
                    vec!["PROXY_WEBSOCKET_CHECK_SECONDS"],
                    "{seconds}"
                ),
            }
        }
        let action = Settings { proxy_unauthenticated_action: "sometimes".into(), ..proxy("http://127.0.0.1:8000") };
        assert_eq!(variables(action.validate().unwrap_err()), vec!["PROXY_UNAUTHENTICATED_ACTION"]);
    }

    #[test]
    fn an_upstream_client_certificate_is_read_at_start_up_and_each_bad_one_named() {
        use rcgen::{CertificateParams, KeyPair};
        let dir = tempfile::tempdir().unwrap();
        let file = |name: &str, contents: &[u8]| {
            let path = dir.path().join(name);
            std::fs::write(&path, contents).unwrap();
            path.to_string_lossy().into_owned()
        };
        let certified = |algorithm| {
            let key = KeyPair::generate_for(algorithm).unwrap();
            (CertificateParams::new(vec!["proxy.test".to_owned()]).unwrap().self_signed(&key).unwrap(), key)
        };
        let (ecdsa, ecdsa_key) = certified(&rcgen::PKCS_ECDSA_P256_SHA256);
        let (ed25519, ed25519_key) = certified(&rcgen::PKCS_ED25519);
        let pkcs12 = |password: &str| {
            use p12_keystore::{Certificate, KeyStore, KeyStoreEntry, PrivateKey, PrivateKeyChain};
            let key = PrivateKey::from_der(&ecdsa_key.serialize_der()).unwrap();
            let chain = PrivateKeyChain::new(b"1".to_vec(), key, [Certificate::from_der(ecdsa.der()).unwrap()]);
            let mut store = KeyStore::new();
            store.add_entry("proxy", KeyStoreEntry::PrivateKeyChain(chain));
            store.writer(password).write().unwrap()
        };
        let both = file("both.pem", format!("{}{}", ecdsa.pem(), ecdsa_key.serialize_pem()).as_bytes());
        let certificate_only = file("certificate.pem", ed25519.pem().as_bytes());
        let key_only = file("key.pem", ed25519_key.serialize_pem().as_bytes());
        let other_key = file("other-key.pem", ecdsa_key.serialize_pem().as_bytes());
        let with_password = file("proxy.p12", &pkcs12("p4ss"));
        let app_services = file("ABCDEF.p12", &pkcs12(""));
        let missing = dir.path().join("missing.pem").to_string_lossy().into_owned();
        let presenting = |upstream: &str, path: Option<&str>, key: Option<&str>, password: Option<&str>| Settings {
            upstream_url: Some(upstream.into()),
            upstream_client_certificate_path: path.map(str::to_owned),
            upstream_client_certificate_key_path: key.map(str::to_owned),
            upstream_client_certificate_password: password.map(str::to_owned),
            ..valid()
        };
        let https = "https://app.internal.example";
        for (path, key, password, chain) in [
            (&both, None, None, ecdsa.der()),
            (&certificate_only, Some(key_only.as_str()), None, ed25519.der()),
            (&with_password, None, Some("p4ss"), ecdsa.der()),
            (&app_services, None, None, ecdsa.der()),
        ] {
            let config = presenting(https, Some(path), key, password).validate().unwrap();
            let presented = config.proxy.unwrap().upstream_client_certificate.expect(path);
            assert_eq!(presented.loaded.cert, vec![chain.clone()], "{path}");
        }
        for (settings, variable, says) in [
            (
                presenting("http://127.0.0.1:8000", Some(&both), None, None),
                "UPSTREAM_CLIENT_CERTIFICATE_PATH",
                "https://",
            ),
            (presenting(https, None, Some(&key_only), None), "UPSTREAM_CLIENT_CERTIFICATE_KEY_PATH", "set both"),
            (presenting(https, Some(&missing), None, None), "UPSTREAM_CLIENT_CERTIFICATE_PATH", "cannot read"),
            (
                presenting(https, Some(&certificate_only), Some(&missing), None),
                "UPSTREAM_CLIENT_CERTIFICATE_KEY_PATH",
                "cannot read",
            ),
            (
                presenting(https, Some(&certificate_only), None, None),
                "UPSTREAM_CLIENT_CERTIFICATE_PATH",
                "holds no private key",
            ),
            (
                presenting(https, Some(&certificate_only), Some(&other_key), None),
                "UPSTREAM_CLIENT_CERTIFICATE_PATH",
                "not the key",
            ),
            (
                presenting(https, Some(&key_only), Some(&key_only), None),
                "UPSTREAM_CLIENT_CERTIFICATE_PATH",
                "no PEM certificate",
            ),
            (
                presenting(https, Some(&with_password), None, Some("wrong")),
                "UPSTREAM_CLIENT_CERTIFICATE_PATH",
                "PASSWORD",
            ),
            (
                presenting(
                    https,
                    Some(&with_password),
                    None,
                    Some("@Microsoft.KeyVault(SecretUri=https://v.vault.azure.net/secrets/p)"),
                ),
                "UPSTREAM_CLIENT_CERTIFICATE_PASSWORD",
                "Key Vault",
            ),
        ] {
            let errors = settings.validate().unwrap_err();
            let text = errors.to_string();
            assert_eq!(variables(errors), vec![variable], "{text}");
            assert!(text.contains(says), "{text}");
        }
    }
    #[test]
    fn the_scopes_of_the_passed_access_token_are_one_resources_and_need_passing_tokens() {
        let scoped = |pass: &str, scopes: &str| Settings {
            upstream_url: Some("http://127.0.0.1:8000".into()),
            proxy_pass_tokens: pass.into(),
            proxy_access_token_scopes: Some(scopes.into()),
            ..valid()
        };
        // Easy Auth's `scope=` value as people write it: the sign-in's own scopes are left out.
        let config = scoped("true", "openid profile email offline_access api://backend/user_impersonation").validate();
        let scopes = config.unwrap().proxy.unwrap().access_token_scopes.unwrap();
        assert_eq!(
            (scopes.resource(), scopes.scopes()),
            ("api://backend", &["api://backend/user_impersonation".into()][..])
        );
        let unset = scoped("true", "  ").validate().unwrap();
        assert!(unset.proxy.unwrap().access_token_scopes.is_none(), "blank is unset");
        for (pass, scopes) in [
            ("false", "api://backend/read"),
            ("true", "api://a/read api://b/read"),
            ("true", "openid"),
            ("true", "a\"b"),
        ] {
            let errors = variables(scoped(pass, scopes).validate().unwrap_err());
            assert_eq!(errors, vec!["PROXY_ACCESS_TOKEN_SCOPES"], "{pass} {scopes}");
        }
    }

    #[test]
    fn proxy_trusted_origins_are_origins_kept_as_browsers_send_them() {
        let trusting = |origins: &str| Settings {
            upstream_url: Some("http://127.0.0.1:8000".into()),
            proxy_trusted_origins: Some(origins.into()),
            ..valid()
        };
        let config = trusting(" https://Admin.example.com , http://localhost:3000/, https://x.example:443 ").validate();
        assert_eq!(
            config.unwrap().proxy.unwrap().trusted_origins,
            ["https://admin.example.com", "http://localhost:3000", "https://x.example"]
        );
        for bad in [
            "admin.example.com",
            "https://admin.example.com/app",
            "https://admin.example.com?x=1",
            "https://admin.example.com#x",
            "https://user@admin.example.com",
            "ftp://admin.example.com",
            "null",
            "*",
        ] {
            assert_eq!(variables(trusting(bad).validate().unwrap_err()), vec!["PROXY_TRUSTED_ORIGINS"], "{bad}");
        }
        assert!(trusting("").validate().unwrap().proxy.unwrap().trusted_origins.is_empty());
    }

    #[test]
    fn bearer_callers_are_applications_and_audiences_app_id_uris() {
        let with = |clients: Option<&str>, audiences: Option<&str>| Settings {
            proxy_bearer_clients: clients.map(str::to_owned),
            proxy_bearer_audiences: audiences.map(str::to_owned),
            upstream_url: Some("http://127.0.0.1:8000".into()),
            ..valid()
        };
        let bearer = |settings: Settings| settings.validate().unwrap().proxy.unwrap().bearer;
        assert_eq!(bearer(with(None, None)), None, "no token accepted by default");
        let caller = "c0ffee00-0000-4000-8000-00000000ca11";
        let policy = bearer(with(Some(&format!(" {caller} ")), Some("https://api.contoso.example"))).unwrap();
        let client_id = valid().client_id.unwrap();
        assert_eq!(policy.clients, Some(vec![caller.to_owned()]));
        assert_eq!(
            policy.audiences,
            [client_id.clone(), format!("api://{client_id}"), "https://api.contoso.example".to_owned()]
        );
        assert_eq!(bearer(with(Some("*"), None)).unwrap().clients, None, "any application");
        for (clients, audiences, named) in [
            (Some("my-spa"), None, "PROXY_BEARER_CLIENTS"),
            (Some(&format!("*, {caller}")[..]), None, "PROXY_BEARER_CLIENTS"),
            (Some(caller), Some("not a uri"), "PROXY_BEARER_AUDIENCES"),
            (None, Some("api://x"), "PROXY_BEARER_AUDIENCES"),
        ] {
            assert_eq!(
                variables(with(clients, audiences).validate().unwrap_err()),
                [named],
                "{clients:?} {audiences:?}"
            );
        }
    }

    #[test]
    fn the_principals_groups_and_size_are_checked() {
        let with = |groups: Option<&str>, bytes: &str| Settings {
            proxy_principal_groups: groups.map(str::to_owned),
            proxy_principal_max_bytes: bytes.into(),
            upstream_url: Some("http://127.0.0.1:8000".into()),
            ..valid()
        };
        let config = with(None, "8000").validate().unwrap().proxy.unwrap();
        assert_eq!((config.principal_groups, config.principal_max_bytes), (None, 8000));
        let config = with(Some(" "), "2048").validate().unwrap().proxy.unwrap();
        assert_eq!(config.principal_groups, None, "blank: every group");
        let group = "5a1e5000-0000-4000-8000-00000000a001";
        let config = with(Some(&format!("{group}, {}", group.to_uppercase())), "1048576").validate();
        let config = config.unwrap().proxy.unwrap();
        assert_eq!(config.principal_groups, Some(vec![group.parse().unwrap(); 2]));
        assert_eq!(config.principal_max_bytes, 1 << 20);
        assert_eq!(variables(with(Some("Sales"), "8000").validate().unwrap_err()), ["PROXY_PRINCIPAL_GROUPS"]);
        for bad in ["2047", "1048577", "8 KB", ""] {
            let problems = variables(with(None, bad).validate().unwrap_err());
            assert_eq!(problems, ["PROXY_PRINCIPAL_MAX_BYTES"], "{bad}");
        }
    }

    #[test]
    fn proxy_upstream_at_the_proxys_own_address_is_refused() {
        let on_port =
            |upstream: &str, port: &str| Settings { upstream_url: Some(upstream.into()), port: port.into(), ..valid() };
        for own in [
            "http://127.0.0.1:8080",
            "http://localhost:8080",
            "http://LOCALHOST:8080",
            "http://[::1]:8080",
            "http://0.0.0.0:8080",
            "http://127.0.0.2:8080",
        ] {
            let errors = on_port(own, "8080").validate().unwrap_err();
            assert!(errors.to_string().contains("is this proxy's own address (PORT is 8080)"), "{own}: {errors}");
            assert_eq!(variables(errors), vec!["UPSTREAM_URL"], "{own}");
        }
        assert_eq!(variables(on_port("http://127.0.0.1", "80").validate().unwrap_err()), vec!["UPSTREAM_URL"]);
        // Another port, or another host on the same port (an app in its own container), is fine.
        for other in [("http://127.0.0.1:8000", "8080"), ("http://app:8080", "8080"), ("http://10.0.0.4:8080", "8080")]
        {
            assert!(on_port(other.0, other.1).validate().is_ok(), "{other:?}");
        }
        // Listening on one address only: the same port elsewhere is another socket.
        let bound = |bind: &str, upstream: &str| Settings { bind_address: bind.into(), ..on_port(upstream, "8080") };
        assert_eq!(
            variables(bound("127.0.0.1", "http://localhost:8080").validate().unwrap_err()),
            vec!["UPSTREAM_URL"]
        );
        assert_eq!(variables(bound("10.0.0.5", "http://10.0.0.5:8080").validate().unwrap_err()), vec!["UPSTREAM_URL"]);
        for (bind, upstream) in [
            ("10.0.0.5", "http://127.0.0.1:8080"),
            ("127.0.0.1", "http://127.0.0.2:8080"),
            ("127.0.0.1", "http://[::1]:8080"),
        ] {
            assert!(bound(bind, upstream).validate().is_ok(), "{bind} {upstream}");
        }
    }

    #[test]
    fn every_problem_is_reported_at_once() {
        let settings = Settings {
            tenant_id: None,
            client_secret: Some(" ".into()),
            redirect_uri: Some("http://app.example/callback".into()),
            port: "eighty".into(),
            log_format: "xml".into(),
            ..valid()
        };
        let errors = variables(settings.validate().unwrap_err());
        assert_eq!(errors, vec!["TENANT_ID", "CLIENT_SECRET", "REDIRECT_URI", "PORT", "LOG_FORMAT"]);
    }

    #[test]
    fn relative_redirect_uri_and_bad_tenant_are_refused() {
        let settings =
            Settings { tenant_id: Some("not a tenant".into()), redirect_uri: Some("/callback".into()), ..valid() };
        let errors = settings.validate().unwrap_err();
        assert!(errors.to_string().contains("not an absolute URL"), "{errors}");
        assert_eq!(variables(errors), vec!["TENANT_ID", "REDIRECT_URI"]);
    }

    #[test]
    fn unresolved_key_vault_reference_is_named() {
        let settings = Settings {
            client_secret: Some("@Microsoft.KeyVault(SecretUri=https://kv.vault.azure.net/secrets/x)".into()),
            ..valid()
        };
        let errors = settings.validate().unwrap_err();
        assert!(errors.to_string().contains("CLIENT_SECRET: is still a literal @Microsoft.KeyVault"), "{errors}");
    }

    #[test]
    fn a_redis_store_requires_a_session_secret() {
        let settings = Settings { session_store: "redis://127.0.0.1:6379".into(), ..valid() };
        let errors = settings.validate().unwrap_err();
        assert!(errors.to_string().contains("SESSION_SECRET: is required with a Redis SESSION_STORE"), "{errors}");
        let settings = Settings {
            session_store: "rediss://cache.example:6380".into(),
            redis_password: Some("pw".into()),
            session_secret: Some("0123456789abcdef0123456789abcdef0123".into()),
            ..valid()
        };
        let config = settings.validate().unwrap();
        assert!(matches!(config.sessions.store, SessionStoreConfig::Redis { .. }));
        let settings = Settings { session_store: "postgres://x".into(), ..valid() };
        assert!(settings.validate().unwrap_err().to_string().contains("SESSION_STORE: must be"));
    }

    #[test]
    fn plain_redis_is_refused_for_a_remote_host() {
        let secret = Some("0123456789abcdef0123456789abcdef0123".to_owned());
        let settings =
            Settings { session_store: "redis://cache.example:6379".into(), session_secret: secret.clone(), ..valid() };
        let errors = settings.validate().unwrap_err();
        assert_eq!(variables(errors), vec!["SESSION_STORE"]);
        for local in ["redis://127.0.0.1:6379", "redis://localhost:6379", "redis://[::1]:6379"] {
            let settings = Settings { session_store: local.into(), session_secret: secret.clone(), ..valid() };
            assert!(settings.validate().is_ok(), "{local}");
        }
    }

    #[test]
    fn session_max_hours_defaults_to_a_day_and_must_be_sane() {
        assert_eq!(valid().validate().unwrap().sessions.max_lifetime, Duration::from_secs(24 * 3600));
        for bad in ["0", "-1", "lots", "100000"] {
            let settings = Settings { session_max_hours: bad.into(), ..valid() };
            assert_eq!(variables(settings.validate().unwrap_err()), vec!["SESSION_MAX_HOURS"], "{bad}");
        }
    }

    #[test]
    fn a_multi_tenant_authority_requires_an_allow_list_or_an_explicit_star() {
        for tenant in ["common", "organizations", "consumers"] {
            let settings = Settings { tenant_id: Some(tenant.into()), ..valid() };
            let errors = settings.validate().unwrap_err();
            assert!(errors.to_string().contains("ALLOWED_TENANTS: is required when TENANT_ID is common"), "{errors}");
            let star = Settings { tenant_id: Some(tenant.into()), allowed_tenants: Some("*".into()), ..valid() };
            assert_eq!(star.validate().unwrap().entra.allowed_tenants, None);
        }
        let tid = "7e6b1c4a-2f0d-4a8e-9c3b-5d1e8f2a6b90";
        let listed = Settings {
            tenant_id: Some("organizations".into()),
            allowed_tenants: Some(format!("{tid}, 0b3a5f5e-0000-4000-8000-000000000001")),
            ..valid()
        };
        let config = listed.validate().unwrap();
        assert_eq!(config.entra.allowed_tenants.as_ref().map(Vec::len), Some(2));
        assert!(config.entra.allows_tenant(tid.parse().unwrap()));
        assert!(!config.entra.allows_tenant(uuid::Uuid::nil()));
        let bad = Settings { allowed_tenants: Some("contoso.com".into()), ..listed };
        assert_eq!(variables(bad.validate().unwrap_err()), vec!["ALLOWED_TENANTS"]);
    }

    #[test]
    fn roles_and_groups_are_any_of_lists() {
        let settings = Settings {
            allowed_roles: Some("Reader, Admin".into()),
            allowed_groups: Some("5a1e5000-0000-4000-8000-00000000a001".into()),
            ..valid()
        };
        let policy = settings.validate().unwrap().access.policy;
        let expected = entra_auth::axum::AccessPolicy::new()
            .require_any_role(["Reader", "Admin"])
            .require_any_group(["5a1e5000-0000-4000-8000-00000000a001"]);
        assert_eq!(policy, expected);
        let bad =
            Settings { allowed_groups: Some("Sales".into()), allowed_roles: Some("Read\u{7f}er".into()), ..valid() };
        assert_eq!(variables(bad.validate().unwrap_err()), vec!["ALLOWED_ROLES", "ALLOWED_GROUPS"]);
        assert!(valid().validate().unwrap().access.policy.is_empty());
    }

    #[test]
    fn a_metrics_token_is_long_and_fits_a_bearer_header() {
        use secrecy::ExposeSecret;
        let with = |token: &str| Settings { metrics_token: Some(token.into()), ..valid() };
        assert!(valid().validate().unwrap().metrics_token.is_none(), "unset: no /metrics");
        assert!(with("  ").validate().unwrap().metrics_token.is_none(), "blank is unset");
        let token = "Zm9vYmFyYmF6cXV4cXV1eGNvcmdlZ3JhdWx0Z2FycGx5Cg==";
        let config = with(&format!(" {token} ")).validate().unwrap();
        assert_eq!(config.metrics_token.unwrap().expose_secret(), token);
        assert!(with(&"a".repeat(32)).validate().is_ok(), "32 characters are enough");
        for bad in ["short", &"a".repeat(31), &format!("{token} {token}"), &format!("{token}\"")] {
            assert_eq!(variables(with(bad).validate().unwrap_err()), ["METRICS_TOKEN"], "{bad}");
        }
        let errors = with("@Microsoft.KeyVault(SecretUri=https://kv.vault.azure.net/secrets/m)").validate();
        assert!(errors.unwrap_err().to_string().contains("METRICS_TOKEN: is still a literal @Microsoft.KeyVault"));
    }

    #[test]
    fn localhost_may_use_http() {
        let settings = Settings { redirect_uri: Some("http://localhost:5001/callback".into()), ..valid() };
        assert!(!settings.validate().unwrap().is_https());
    }

    #[test]
    fn exactly_one_client_credential_is_required_and_each_is_checked() {
        let none = Settings { client_secret: None, ..valid() };
        let errors = none.validate().unwrap_err().to_string();
        assert!(errors.contains("CLIENT_SECRET: no client credential is set"), "{errors}");
        assert!(errors.contains("MANAGED_IDENTITY_CLIENT_ID"), "the message names every way: {errors}");

        let several =
            Settings { managed_identity_client_id: Some("5b0e2a53-6f7c-4c1e-9d8a-2a1f3e4b5c6d".into()), ..valid() };
        let errors = several.validate().unwrap_err().to_string();
        assert!(errors.contains("CLIENT_SECRET, MANAGED_IDENTITY_CLIENT_ID are all set"), "{errors}");

        let identity_without_endpoint = Settings {
            client_secret: None,
            managed_identity_client_id: Some("5b0e2a53-6f7c-4c1e-9d8a-2a1f3e4b5c6d".into()),
            ..valid()
        };
        let errors = identity_without_endpoint.validate().unwrap_err().to_string();
        assert!(errors.contains("IDENTITY_ENDPOINT and IDENTITY_HEADER are not"), "{errors}");

        let bad_thumbprint =
            Settings { client_secret: None, client_certificate_thumbprint: Some("abc".into()), ..valid() };
        assert_eq!(variables(bad_thumbprint.validate().unwrap_err()), vec!["CLIENT_CERTIFICATE_THUMBPRINT"]);

        let store = tempfile::tempdir().unwrap();
        let not_loaded = Settings {
            client_secret: None,
            client_certificate_thumbprint: Some("A".repeat(40)),
            client_certificate_store: store.path().display().to_string(),
            ..valid()
        };
        let errors = not_loaded.validate().unwrap_err().to_string();
        assert!(errors.contains("WEBSITE_LOAD_CERTIFICATES"), "{errors}");

        let not_a_certificate = store.path().join("app.pem");
        std::fs::write(&not_a_certificate, "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n").unwrap();
        let unusable = Settings {
            client_secret: None,
            client_certificate_path: Some(not_a_certificate.display().to_string()),
            ..valid()
        };
        let errors = unusable.validate().unwrap_err().to_string();
        assert!(errors.contains("CLIENT_CERTIFICATE_PATH: certificate credential: no PRIVATE KEY block"), "{errors}");

        let missing_file =
            Settings { client_secret: None, federated_token_file: Some("/nonexistent/token".into()), ..valid() };
        assert_eq!(variables(missing_file.validate().unwrap_err()), vec!["AZURE_FEDERATED_TOKEN_FILE"]);
    }
}
