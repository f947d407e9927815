//! `entra-emulator`: run the Entra ID v2.0 + Graph emulator as a process.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::Parser;
use entra_emulator::{
    ClientRegistration, Emulator, EmulatorConfig, FederatedCredential, ListenOptions, ManagedIdentity, User,
};

/// The audience Entra requires of a federated credential's token.
const TOKEN_EXCHANGE_AUDIENCE: &str = "api://AzureADTokenExchange";
use url::Url;
use uuid::Uuid;

/// A local Microsoft Entra ID v2.0 + Microsoft Graph emulator. Not a Microsoft service: for
/// development and tests only.
#[derive(Parser, Debug)]
#[command(version, about)]
struct Cli {
    /// Address to listen on.
    #[arg(long, env = "EMULATOR_BIND", default_value = "127.0.0.1:8443")]
    bind: SocketAddr,
    /// The tenant (directory) id.
    #[arg(long, env = "EMULATOR_TENANT_ID", default_value_t = entra_emulator::DEFAULT_TENANT_ID)]
    tenant_id: Uuid,
    /// The application (client) id of the registered app.
    #[arg(long, env = "EMULATOR_CLIENT_ID", default_value_t = entra_emulator::DEFAULT_CLIENT_ID.to_string())]
    client_id: String,
    /// The registered app's client secret.
    #[arg(long, env = "EMULATOR_CLIENT_SECRET", default_value = entra_emulator::DEFAULT_CLIENT_SECRET, hide_default_value = true)]
    client_secret: String,
    /// A redirect URI of the registered app (repeat the flag for several; comma-separated in the env var).
    #[arg(long = "redirect-uri", env = "EMULATOR_REDIRECT_URIS", value_delimiter = ',')]
    redirect_uris: Vec<String>,
    /// Where sign-out may send the browser back (repeatable): added to the redirect URIs, which
    /// is what Entra checks `post_logout_redirect_uri` against.
    #[arg(long = "post-logout-redirect-uri", env = "EMULATOR_POST_LOGOUT_REDIRECT_URIS", value_delimiter = ',')]
    post_logout_redirect_uris: Vec<String>,
    /// A redirect URI of the single-page application platform (repeatable): codes sent there
    /// are redeemed from the browser, with PKCE and no secret.
    #[arg(long = "spa-redirect-uri", env = "EMULATOR_SPA_REDIRECT_URIS", value_delimiter = ',')]
    spa_redirect_uris: Vec<String>,
    /// A redirect URI of the mobile and desktop platform (repeatable): a public client, no secret.
    #[arg(long = "public-client-redirect-uri", env = "EMULATOR_PUBLIC_CLIENT_REDIRECT_URIS", value_delimiter = ',')]
    public_client_redirect_uris: Vec<String>,
    /// An application permission granted to the registered app (repeatable), as
    /// `<resource>/<role>`: `api://<app id>/Orders.Read.All`, `https://graph.microsoft.com/User.Read.All`.
    /// Its client-credentials tokens for that resource's `/.default` carry it in `roles`.
    #[arg(long = "application-permission", env = "EMULATOR_APPLICATION_PERMISSIONS", value_delimiter = ',')]
    application_permissions: Vec<String>,
    /// The app's front-channel logout URL, called with `sid` and `iss` on sign-out.
    #[arg(long, env = "EMULATOR_FRONT_CHANNEL_LOGOUT_URL")]
    front_channel_logout_url: Option<String>,
    /// A PEM public key that verifies the app's private_key_jwt client assertions.
    #[arg(long, env = "EMULATOR_CLIENT_ASSERTION_KEY")]
    client_assertion_key: Option<PathBuf>,
    /// Users file (JSON array, JSON {"users": [...], "groups": [...]}, or TOML with [[users]] and
    /// [[groups]]): userPrincipalName, password, displayName, givenName, surname, mail (may be
    /// null), jobTitle, optional oid, photo, tenantId, groups (ids), appRoles, directoryRoles;
    /// groups: id, displayName, securityEnabled.
    #[arg(long, env = "EMULATOR_USERS")]
    users: Option<PathBuf>,
    /// Serve HTTPS with a generated CA + certificate for 127.0.0.1/localhost/::1; the CA PEM is
    /// written into this directory (MSAL refuses non-https authorities).
    #[arg(long, env = "EMULATOR_TLS_SELF_SIGNED")]
    tls_self_signed: Option<PathBuf>,
    /// The URL clients use to reach the emulator, if not the bound address.
    #[arg(long, env = "EMULATOR_PUBLIC_URL")]
    public_url: Option<Url>,
    /// Above this many groups, tokens carry the groups overage claim instead of `groups`.
    #[arg(long, env = "EMULATOR_GROUP_OVERAGE_LIMIT", default_value_t = entra_emulator::DEFAULT_GROUP_OVERAGE_LIMIT)]
    group_overage_limit: usize,
    /// Lifetime of access tokens, in seconds [default: random between 3600 and 5400, as Entra's].
    #[arg(long, env = "EMULATOR_ACCESS_TOKEN_LIFETIME")]
    access_token_lifetime: Option<u64>,
    /// Treat every permission as already consented (skip the consent page).
    #[arg(long, env = "EMULATOR_ADMIN_CONSENT")]
    admin_consent: bool,
    /// A user-assigned managed identity served by the identity endpoint (`/_identity/token`), as
    /// CLIENT_ID:OBJECT_ID (repeatable). The app registration trusts it as a federated credential
    /// (issuer this tenant, subject OBJECT_ID, audience api://AzureADTokenExchange).
    #[arg(long = "managed-identity", env = "EMULATOR_MANAGED_IDENTITIES", value_delimiter = ',')]
    managed_identities: Vec<String>,
    /// Refuse a refresh token after its first use (Entra keeps it usable until it expires).
    #[arg(long, env = "EMULATOR_STRICT_REFRESH_TOKEN_ROTATION")]
    strict_refresh_token_rotation: bool,
}

impl Cli {
    fn into_config(self) -> anyhow::Result<(EmulatorConfig, ListenOptions)> {
        let defaults = ClientRegistration::default();
        let client = ClientRegistration {
            client_id: self.client_id,
            client_secret: Some(self.client_secret),
            assertion_public_key_pem: match &self.client_assertion_key {
                Some(path) => Some(
                    std::fs::read_to_string(path)
                        .map_err(|err| anyhow::anyhow!("--client-assertion-key {}: {err}", path.display()))?,
                ),
                None => None,
            },
            redirect_uris: match (self.redirect_uris.is_empty(), self.post_logout_redirect_uris.is_empty()) {
                (true, true) => defaults.redirect_uris,
                (true, false) => {
                    let callbacks = defaults.redirect_uris.into_iter().filter(|uri| uri.ends_with("/callback"));
                    callbacks.chain(self.post_logout_redirect_uris).collect()
                }
                (false, _) => self.redirect_uris.into_iter().chain(self.post_logout_redirect_uris).collect(),
            },
            spa_redirect_uris: self.spa_redirect_uris,
            public_client_redirect_uris: self.public_client_redirect_uris,
            front_channel_logout_url: self.front_channel_logout_url,
            display_name: defaults.display_name,
            app_roles: defaults.app_roles,
            group_membership_claims: defaults.group_membership_claims,
            sign_in_audience: defaults.sign_in_audience,
            requested_access_token_version: defaults.requested_access_token_version,
            application_permissions: self.application_permissions,
            certificates: Vec::new(),
            federated_credentials: Vec::new(),
        };
        let mut client = client;
        let mut managed_identities = Vec::new();
        for identity in &self.managed_identities {
            let Some((client_id, object_id)) = identity.split_once(':') else {
                anyhow::bail!("--managed-identity {identity}: expected CLIENT_ID:OBJECT_ID");
            };
            managed_identities
                .push(ManagedIdentity { client_id: client_id.to_owned(), object_id: object_id.to_owned() });
            client.federated_credentials.push(FederatedCredential {
                // The emulator's issuer is known once it listens: filled in by `main`.
                issuer: String::new(),
                subject: object_id.to_owned(),
                audiences: vec![TOKEN_EXCHANGE_AUDIENCE.to_owned()],
            });
        }
        let defaults = EmulatorConfig::default();
        let (users, groups) = match &self.users {
            Some(path) => {
                let directory = entra_emulator::load_directory(path)?;
                (directory.users, directory.groups.unwrap_or(defaults.groups))
            }
            None => (User::defaults(), defaults.groups),
        };
        let config = EmulatorConfig {
            tenant_id: self.tenant_id,
            clients: vec![client],
            users,
            groups,
            group_overage_limit: self.group_overage_limit,
            access_token_lifetime: self.access_token_lifetime.map(Duration::from_secs),
            admin_consent: self.admin_consent,
            strict_refresh_token_rotation: self.strict_refresh_token_rotation,
            managed_identities,
            ..EmulatorConfig::default()
        };
        let listen =
            ListenOptions { bind: self.bind, tls_self_signed_dir: self.tls_self_signed, public_url: self.public_url };
        Ok((config, listen))
    }
}

#[tokio::main]
async fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()))
        .init();
    let cli = Cli::parse();
    let (config, listen) = match cli.into_config() {
        Ok(parts) => parts,
        Err(err) => {
            eprintln!("entra-emulator: {err}");
            return ExitCode::from(2);
        }
    };
    let emulator = match Emulator::start_with(config, listen).await {
        Ok(emulator) => emulator,
        Err(err) => {
            eprintln!("entra-emulator: cannot start: {err:#}");
            return ExitCode::from(1);
        }
    };
    // Federated credentials added for --managed-identity name this emulator's own issuer.
    let issuer = format!("{}/v2.0", emulator.authority());
    for client in emulator.clients() {
        emulator.update_client(&client.client_id, |client| {
            for credential in client.federated_credentials.iter_mut().filter(|c| c.issuer.is_empty()) {
                credential.issuer = issuer.clone();
            }
        });
    }
    print_banner(&emulator);
    let _ = tokio::signal::ctrl_c().await;
    emulator.shutdown().await;
    ExitCode::SUCCESS
}

fn print_banner(emulator: &Emulator) {
    println!("entra-emulator listening on {}", emulator.base_url());
    println!("  authority       {}", emulator.authority());
    println!("  discovery       {}/v2.0/.well-known/openid-configuration", emulator.authority());
    println!("  graph endpoint  {}", emulator.graph_endpoint());
    println!("  admin           {}/_emulator", emulator.base_url());
    if let Some(ca) = emulator.ca_pem_path() {
        println!("  CA certificate  {} (trust it: SSL_CERT_FILE / REQUESTS_CA_BUNDLE)", ca.display());
    }
    for client in emulator.clients() {
        println!("client id         {}", client.client_id);
        if let Some(secret) = &client.client_secret {
            println!("client secret     {secret}   (emulator only)");
        }
        for uri in &client.redirect_uris {
            println!("redirect URI      {uri}");
        }
        for uri in &client.spa_redirect_uris {
            println!("SPA redirect URI  {uri}");
        }
        for uri in &client.public_client_redirect_uris {
            println!("public client URI {uri}");
        }
    }
    if emulator.clients().iter().any(|client| !client.federated_credentials.is_empty()) {
        println!("identity endpoint {}   (IDENTITY_ENDPOINT)", emulator.identity_endpoint());
        println!("identity header   {}   (IDENTITY_HEADER)", emulator.identity_header());
    }
    println!("test users:");
    for user in emulator.users() {
        println!("  {:<28} password {:<20} {}", user.user_principal_name, user.password, user.display_name);
    }
}
