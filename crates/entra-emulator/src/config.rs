//! What the emulated tenant holds: its id, the registered client applications and the users.

use std::path::Path;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// The tenant id the emulator uses unless told otherwise (a fixed GUID, so URLs stay stable).
pub const DEFAULT_TENANT_ID: Uuid = Uuid::from_u128(0x7e6b1c4a_2f0d_4a8e_9c3b_5d1e8f2a6b90);
/// The client id of the built-in app registration.
pub const DEFAULT_CLIENT_ID: Uuid = Uuid::from_u128(0x3f1c9a2e_8b4d_4c6f_a1e7_0d5b2c8e9f41);
/// The built-in client secret. Emulator-only: it is printed at start and unlocks nothing real.
pub const DEFAULT_CLIENT_SECRET: &str = "emulator-client-secret-not-for-production";
/// The domain of the built-in users' sign-in names.
pub const DEFAULT_DOMAIN: &str = "emulator.test";
/// Above this many groups a JWT carries the overage claim instead of `groups` (Entra's limit for
/// JWTs; tests lower it).
pub const DEFAULT_GROUP_OVERAGE_LIMIT: usize = 200;
/// Graph's default page size for directory object collections such as `transitiveMemberOf`.
pub const DEFAULT_GRAPH_PAGE_SIZE: usize = 100;
/// The Microsoft Graph delegated permissions the emulator knows (a scope outside the list is
/// refused with AADSTS650053, as Entra refuses a permission Graph does not have).
pub const GRAPH_DELEGATED_PERMISSIONS: [&str; 36] = [
    "User.Read",
    "User.ReadWrite",
    "User.ReadBasic.All",
    "User.Read.All",
    "User.ReadWrite.All",
    "Mail.Read",
    "Mail.ReadBasic",
    "Mail.ReadWrite",
    "Mail.Send",
    "Mail.Read.Shared",
    "Calendars.Read",
    "Calendars.ReadWrite",
    "Calendars.Read.Shared",
    "Contacts.Read",
    "Contacts.ReadWrite",
    "Files.Read",
    "Files.Read.All",
    "Files.ReadWrite",
    "Files.ReadWrite.All",
    "Sites.Read.All",
    "Sites.ReadWrite.All",
    "Group.Read.All",
    "Group.ReadWrite.All",
    "GroupMember.Read.All",
    "Directory.Read.All",
    "Directory.AccessAsUser.All",
    "People.Read",
    "Presence.Read",
    "Presence.Read.All",
    "Tasks.Read",
    "Tasks.ReadWrite",
    "Notes.Read",
    "Notes.ReadWrite",
    "Chat.Read",
    "ChannelMessage.Send",
    "Team.ReadBasic.All",
];
/// The permission every app registration's API exposes (`api://<client id>/access_as_user`).
pub const EXPOSED_API_PERMISSION: &str = "access_as_user";

/// The built-in "Sales" security group.
pub const SALES_GROUP_ID: Uuid = Uuid::from_u128(0x5a1e5000_0000_4000_8000_00000000a001);
/// The built-in "All Company" group (not security-enabled: only `All` group claims carry it).
pub const ALL_COMPANY_GROUP_ID: Uuid = Uuid::from_u128(0xa11c0000_0000_4000_8000_00000000a002);

/// Everything the emulator needs to start.
#[derive(Clone, Debug)]
pub struct EmulatorConfig {
    /// The directory tenant's id (`tid`).
    pub tenant_id: Uuid,
    /// Registered applications.
    pub clients: Vec<ClientRegistration>,
    /// The directory's users.
    pub users: Vec<User>,
    /// Lifetime of issued access tokens (`expires_in`). `None` (the default) varies it at
    /// random between 60 and 90 minutes, as Entra does, so a client that assumes an hour is
    /// caught; tests that wait for expiry fix it.
    pub access_token_lifetime: Option<Duration>,
    /// Lifetime of authorization codes (Entra: about 10 minutes).
    pub code_lifetime: Duration,
    /// When true every user has consented to every client already, as after admin consent.
    pub admin_consent: bool,
    /// When true a refresh token works once (a rotated one is refused with AADSTS70000), for
    /// tests of clients that must store the new one. Entra itself keeps a redeemed refresh token
    /// usable until it expires, so the default is false: a client that reuses one passes here as
    /// it would there.
    pub strict_refresh_token_rotation: bool,
    /// User-assigned managed identities the identity endpoint (`/_identity/token`, App
    /// Service-style) issues tokens for.
    pub managed_identities: Vec<ManagedIdentity>,
    /// Lifetime of the identity endpoint's tokens (App Service's last about a day).
    pub managed_identity_token_lifetime: Duration,
    /// The directory's groups (users name theirs by id).
    pub groups: Vec<Group>,
    /// Above this many groups tokens carry the overage claim (`_claim_names`) instead of
    /// `groups`. Default [`DEFAULT_GROUP_OVERAGE_LIMIT`].
    pub group_overage_limit: usize,
    /// Page size of Graph collections (`transitiveMemberOf`) unless `$top` asks for another.
    /// Default [`DEFAULT_GRAPH_PAGE_SIZE`].
    pub graph_page_size: usize,
    /// The Graph delegated permissions that exist. Default [`GRAPH_DELEGATED_PERMISSIONS`].
    pub graph_permissions: Vec<String>,
    /// When true PKCE `plain` is refused (AADSTS501491), for tests of clients that must use
    /// S256. Entra accepts `plain`, so the default is false.
    pub strict_pkce: bool,
}

/// A directory group: what tokens and Graph's membership answers need of Graph's `group`.
#[derive(Clone, Debug, Deserialize, Serialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Group {
    /// Object id (what `groups` claims carry).
    pub id: Uuid,
    /// Display name.
    pub display_name: String,
    /// Security groups are in `groups` claims under `SecurityGroup`; others only under `All`.
    #[serde(default = "security_enabled_by_default")]
    pub security_enabled: bool,
}

fn security_enabled_by_default() -> bool {
    true
}

/// Which groups an app registration's tokens carry (its manifest's `groupMembershipClaims`).
#[derive(Clone, Copy, Debug, Default, Deserialize, PartialEq, Eq)]
pub enum GroupMembershipClaims {
    /// No `groups` claim (Entra's default for a new registration).
    #[default]
    None,
    /// Security groups the user is a member of.
    SecurityGroup,
    /// Every group.
    All,
}

/// A user-assigned managed identity.
#[derive(Clone, Debug)]
pub struct ManagedIdentity {
    /// Its client id (what an app asks the identity endpoint for).
    pub client_id: String,
    /// Its object (principal) id: the `sub` of its tokens, the subject of a federated credential.
    pub object_id: String,
}

/// A certificate uploaded to an app registration ("Certificates & secrets").
#[derive(Clone, Debug)]
pub struct CertificateCredential {
    /// The certificate, PEM: its thumbprints (`x5t`, `x5t#S256`) identify it in assertions.
    pub certificate_pem: String,
    /// Its public key, SPKI PEM: verifies the assertions signed with it.
    pub public_key_pem: String,
}

/// A federated identity credential of an app registration: a token from `issuer` about `subject`
/// for one of `audiences` may stand in for the app's secret.
#[derive(Clone, Debug)]
pub struct FederatedCredential {
    /// The token's `iss`, e.g. the tenant's v2.0 issuer for a managed identity.
    pub issuer: String,
    /// The token's `sub`, e.g. the managed identity's object id.
    pub subject: String,
    /// Accepted `aud` values (Entra: `api://AzureADTokenExchange`).
    pub audiences: Vec<String>,
}

impl Default for EmulatorConfig {
    fn default() -> Self {
        Self {
            tenant_id: DEFAULT_TENANT_ID,
            clients: vec![ClientRegistration::default()],
            users: User::defaults(),
            access_token_lifetime: None,
            code_lifetime: Duration::from_secs(600),
            admin_consent: false,
            strict_refresh_token_rotation: false,
            managed_identities: Vec::new(),
            managed_identity_token_lifetime: Duration::from_secs(24 * 3600),
            groups: vec![
                Group { id: SALES_GROUP_ID, display_name: "Sales".to_owned(), security_enabled: true },
                Group { id: ALL_COMPANY_GROUP_ID, display_name: "All Company".to_owned(), security_enabled: false },
            ],
            group_overage_limit: DEFAULT_GROUP_OVERAGE_LIMIT,
            graph_page_size: DEFAULT_GRAPH_PAGE_SIZE,
            graph_permissions: GRAPH_DELEGATED_PERMISSIONS.iter().map(|p| (*p).to_owned()).collect(),
            strict_pkce: false,
        }
    }
}

impl EmulatorConfig {
    /// The first registered client, the one the CLI flags and `demo` configure.
    pub fn default_client(&self) -> Option<&ClientRegistration> {
        self.clients.first()
    }
}

/// An app registration: who may ask for tokens, and where answers may be sent.
#[derive(Clone, Debug)]
pub struct ClientRegistration {
    /// Application (client) id.
    pub client_id: String,
    /// The client secret, for `client_secret_post` / `client_secret_basic`.
    pub client_secret: Option<String>,
    /// A PEM public key (SPKI) that verifies `private_key_jwt` client assertions without a
    /// thumbprint in their header.
    pub assertion_public_key_pem: Option<String>,
    /// Certificates whose assertions (found by `x5t` / `x5t#S256`) authenticate the app.
    pub certificates: Vec<CertificateCredential>,
    /// Federated identity credentials (managed identity, workload identity).
    pub federated_credentials: Vec<FederatedCredential>,
    /// Redirect URIs of the Web platform (a confidential client: its token requests carry a
    /// secret or an assertion), matched exactly and case-sensitively as Entra does (for
    /// `http://localhost` any port); the logout endpoint's `post_logout_redirect_uri` must be a
    /// redirect URI of one of the platforms.
    pub redirect_uris: Vec<String>,
    /// Redirect URIs of the Single-page application platform: codes sent there are redeemed
    /// from the browser (cross-origin, with PKCE and no secret) and their refresh tokens last 24
    /// hours, as in Entra.
    pub spa_redirect_uris: Vec<String>,
    /// Redirect URIs of the Mobile and desktop applications platform (a public client: no
    /// secret, e.g. `http://localhost` for a CLI).
    pub public_client_redirect_uris: Vec<String>,
    /// Called with `sid` and `iss` when a user signs out of the emulator.
    pub front_channel_logout_url: Option<String>,
    /// Display name shown on the consent page.
    pub display_name: String,
    /// The app roles it defines (their `value`s); a user's assigned ones are in `roles` claims.
    pub app_roles: Vec<String>,
    /// Which groups its tokens carry.
    pub group_membership_claims: GroupMembershipClaims,
    /// Who may sign in: its own tenant's users only (Entra's default for a new registration), or
    /// any organization's (then `common` and `organizations` work).
    pub sign_in_audience: SignInAudience,
    /// The version of the access tokens issued for the API it exposes (the manifest's
    /// `requestedAccessTokenVersion`): v1.0 unless it asks for v2.0, as in Entra.
    pub requested_access_token_version: AccessTokenVersion,
    /// Application permissions granted to it (admin-consented app roles of other apps' APIs or
    /// Graph), each as `<resource>/<role>`: `api://<app id>/Orders.Read.All`,
    /// `https://graph.microsoft.com/User.Read.All`. Its own tokens (client credentials, for a
    /// resource's `/.default`) carry those of that resource in `roles`.
    pub application_permissions: Vec<String>,
}

/// The format of access tokens for an app's API. v1.0: `iss` `https://sts.windows.net/{tid}/`,
/// `aud` the Application ID URI, the caller in `appid`, the user's `upn`. v2.0: the authority's
/// issuer, `aud` the client id, the caller in `azp`, `preferred_username`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum AccessTokenVersion {
    /// `requestedAccessTokenVersion` null or 1 (Entra's default).
    #[default]
    V1,
    /// `requestedAccessTokenVersion: 2`.
    V2,
}

/// The platform a redirect URI is registered under (the portal's "Authentication" page): it
/// decides how the code sent there is redeemed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Platform {
    /// A web app: a confidential client, redeeming on its server.
    Web,
    /// A single-page application: a public client, redeeming from the browser.
    Spa,
    /// A mobile or desktop application: a public client.
    PublicClient,
}

impl ClientRegistration {
    /// The platform `redirect_uri` is registered under, if it is registered at all. An exact
    /// match wins over a localhost one with another port.
    pub fn platform_of(&self, redirect_uri: &str) -> Option<Platform> {
        let platforms = [
            (Platform::Web, &self.redirect_uris),
            (Platform::Spa, &self.spa_redirect_uris),
            (Platform::PublicClient, &self.public_client_redirect_uris),
        ];
        let find = |matches: &dyn Fn(&str) -> bool| {
            platforms.iter().find(|(_, uris)| uris.iter().any(|uri| matches(uri))).map(|(platform, _)| *platform)
        };
        find(&|uri| uri == redirect_uri).or_else(|| find(&|uri| redirect_uri_matches(uri, redirect_uri)))
    }
}

/// Whether a requested redirect URI matches a registered one: exactly (case-sensitive), except
/// that for `http://localhost` and `http://127.0.0.1` Entra ignores the port.
pub(crate) fn redirect_uri_matches(registered: &str, requested: &str) -> bool {
    use url::Url;
    if registered == requested {
        return true;
    }
    let (Ok(registered), Ok(requested)) = (Url::parse(registered), Url::parse(requested)) else { return false };
    let loopback = |url: &Url| url.scheme() == "http" && matches!(url.host_str(), Some("localhost" | "127.0.0.1"));
    loopback(&registered)
        && loopback(&requested)
        && registered.host_str() == requested.host_str()
        && registered.path() == requested.path()
        && registered.query() == requested.query()
}

/// An app registration's `signInAudience`.
#[derive(Clone, Copy, Debug, Default, Deserialize, PartialEq, Eq)]
pub enum SignInAudience {
    /// Single tenant: `common` and `organizations` are refused (AADSTS50194).
    AzureADMyOrg,
    /// Any organization's users (the built-in registration's, so multi-tenant apps can be tried).
    #[default]
    AzureADMultipleOrgs,
}

impl Default for ClientRegistration {
    fn default() -> Self {
        Self {
            client_id: DEFAULT_CLIENT_ID.to_string(),
            client_secret: Some(DEFAULT_CLIENT_SECRET.to_owned()),
            assertion_public_key_pem: None,
            certificates: Vec::new(),
            federated_credentials: Vec::new(),
            redirect_uris: vec![
                "http://localhost:5001/callback".to_owned(),
                "http://127.0.0.1:5001/callback".to_owned(),
                "http://localhost:5001/".to_owned(),
                "http://127.0.0.1:5001/".to_owned(),
            ],
            spa_redirect_uris: Vec::new(),
            public_client_redirect_uris: Vec::new(),
            front_channel_logout_url: None,
            display_name: "entra-webapp".to_owned(),
            app_roles: vec!["Admin".to_owned(), "Reader".to_owned()],
            group_membership_claims: GroupMembershipClaims::SecurityGroup,
            sign_in_audience: SignInAudience::AzureADMultipleOrgs,
            requested_access_token_version: AccessTokenVersion::V1,
            application_permissions: Vec::new(),
        }
    }
}

/// A directory user, shaped like Graph's `user` resource plus a password.
#[derive(Clone, Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct User {
    /// Sign-in name, e.g. `adele@emulator.test`.
    pub user_principal_name: String,
    /// The password typed on the sign-in page.
    pub password: String,
    /// Full name (`name` claim, Graph `displayName`).
    pub display_name: String,
    /// First name.
    #[serde(default)]
    pub given_name: Option<String>,
    /// Last name.
    #[serde(default)]
    pub surname: Option<String>,
    /// Email address; may be null, as it is for many real accounts.
    #[serde(default)]
    pub mail: Option<String>,
    /// Job title.
    #[serde(default)]
    pub job_title: Option<String>,
    /// Immutable object id; generated from the UPN when absent so it is stable across runs.
    #[serde(default)]
    pub oid: Option<Uuid>,
    /// A JPEG or PNG file served as `/me/photo/$value`.
    #[serde(default)]
    pub photo: Option<std::path::PathBuf>,
    /// The user's home tenant (`tid`); default the emulator's own. Users of other tenants sign
    /// in through `common` / `organizations` or their own tenant's authority.
    #[serde(default)]
    pub tenant_id: Option<Uuid>,
    /// Ids of the groups the user is a member of.
    #[serde(default)]
    pub groups: Vec<Uuid>,
    /// App role values assigned to the user (those the app registration defines reach `roles`).
    #[serde(default)]
    pub app_roles: Vec<String>,
    /// Directory role template ids (`wids`), e.g. Global Reader's.
    #[serde(default)]
    pub directory_roles: Vec<Uuid>,
}

impl User {
    /// A user of the emulator's tenant with nothing but a name and a password.
    pub fn new(user_principal_name: &str, password: &str, display_name: &str) -> Self {
        Self {
            user_principal_name: user_principal_name.to_owned(),
            password: password.to_owned(),
            display_name: display_name.to_owned(),
            given_name: None,
            surname: None,
            mail: None,
            job_title: None,
            oid: None,
            photo: None,
            tenant_id: None,
            groups: Vec::new(),
            app_roles: Vec::new(),
            directory_roles: Vec::new(),
        }
    }

    /// The built-in users: an ordinary one (app role `Reader`, in Sales and All Company) and one
    /// whose name carries HTML, who has no mail, no role and no group.
    pub fn defaults() -> Vec<User> {
        vec![
            User {
                given_name: Some("Adele".to_owned()),
                surname: Some("Vance".to_owned()),
                mail: Some(format!("adele.vance@{DEFAULT_DOMAIN}")),
                job_title: Some("Product Manager".to_owned()),
                groups: vec![SALES_GROUP_ID, ALL_COMPANY_GROUP_ID],
                app_roles: vec!["Reader".to_owned()],
                ..User::new(&format!("adele@{DEFAULT_DOMAIN}"), "adele-password", "Adele Vance")
            },
            User {
                given_name: Some("Mallory".to_owned()),
                ..User::new(
                    &format!("mallory@{DEFAULT_DOMAIN}"),
                    "mallory-password",
                    "<script>alert(1)</script> Mallory",
                )
            },
        ]
    }

    /// The user's object id: configured, or derived from the UPN (UUID v5-like, stable).
    pub fn object_id(&self) -> Uuid {
        self.oid.unwrap_or_else(|| {
            use sha2::{Digest, Sha256};
            let digest = Sha256::digest(self.user_principal_name.to_lowercase().as_bytes());
            let mut bytes = [0u8; 16];
            bytes.copy_from_slice(&digest[..16]);
            uuid::Builder::from_random_bytes(bytes).into_uuid()
        })
    }
}

/// Why a users file could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum UsersFileError {
    /// The file could not be read.
    #[error("cannot read users file {path}: {source}")]
    Read {
        /// The file.
        path: String,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The file is not valid JSON or TOML of the expected shape.
    #[error("users file {path} is not valid {format}: {message}")]
    Parse {
        /// The file.
        path: String,
        /// JSON or TOML.
        format: &'static str,
        /// What the parser said.
        message: String,
    },
    /// The file lists no users.
    #[error("users file {path} lists no users")]
    Empty {
        /// The file.
        path: String,
    },
}

/// The users of a users file, and the groups it defines (if it defines any).
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Directory {
    /// The users.
    pub users: Vec<User>,
    /// The groups; `None` keeps the built-in ones.
    #[serde(default)]
    pub groups: Option<Vec<Group>>,
}

/// Loads users from a JSON array or a TOML file with `[[users]]` tables.
pub fn load_users(path: &Path) -> Result<Vec<User>, UsersFileError> {
    load_directory(path).map(|directory| directory.users)
}

/// Loads a users file: a JSON array of users, a JSON object `{"users": [...], "groups": [...]}`,
/// or TOML with `[[users]]` and `[[groups]]` tables.
pub fn load_directory(path: &Path) -> Result<Directory, UsersFileError> {
    let shown = path.display().to_string();
    let text = std::fs::read_to_string(path).map_err(|source| UsersFileError::Read { path: shown.clone(), source })?;
    let is_toml = path.extension().is_some_and(|ext| ext == "toml");
    let parse_error = |format, message: String| UsersFileError::Parse { path: shown.clone(), format, message };
    let directory = if is_toml {
        toml::from_str::<Directory>(&text).map_err(|err| parse_error("TOML", err.to_string()))?
    } else if text.trim_start().starts_with('[') {
        let users: Vec<User> = serde_json::from_str(&text).map_err(|err| parse_error("JSON", err.to_string()))?;
        Directory { users, groups: None }
    } else {
        serde_json::from_str::<Directory>(&text).map_err(|err| parse_error("JSON", err.to_string()))?
    };
    if directory.users.is_empty() {
        return Err(UsersFileError::Empty { path: shown });
    }
    Ok(directory)
}
