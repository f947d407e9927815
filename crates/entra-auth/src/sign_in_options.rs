//! What a sign-in may ask Entra for besides the flow itself: which account (`login_hint`), which
//! home realm (`domain_hint`), whether to show the account picker or force a password or consent
//! (`prompt`), and a claims challenge. Each hint is validated before it reaches a URL.
//! See `docs/ENTRA.md`, "Sign-in hints".

use std::str::FromStr;

use crate::authority::is_domain_name;

/// The longest `login_hint` accepted (an email address is at most 254 characters).
pub const MAX_LOGIN_HINT_LENGTH: usize = 254;
/// The longest `domain_hint` accepted (a DNS name is at most 253 characters).
pub const MAX_DOMAIN_HINT_LENGTH: usize = 253;

/// Options of one sign-in. Build with [`SignInOptions::default`] and the `with_*` methods.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct SignInOptions {
    /// Pre-fills (or picks) the account.
    pub login_hint: Option<LoginHint>,
    /// Skips home realm discovery for this domain.
    pub domain_hint: Option<DomainHint>,
    /// Account picker, password again, or consent again.
    pub prompt: Option<Prompt>,
    /// A claims challenge (JSON) the new tokens must satisfy.
    pub claims: Option<String>,
    /// Incremental consent: the scopes to authorize now (one resource's) instead of the sign-in
    /// scopes; the tokens go with the session the user already has.
    pub scopes: Option<ResourceScopes>,
}

impl SignInOptions {
    /// Sends `login_hint`.
    pub fn with_login_hint(mut self, hint: LoginHint) -> Self {
        self.login_hint = Some(hint);
        self
    }

    /// Sends `domain_hint`.
    pub fn with_domain_hint(mut self, hint: DomainHint) -> Self {
        self.domain_hint = Some(hint);
        self
    }

    /// Sends `prompt`.
    pub fn with_prompt(mut self, prompt: Prompt) -> Self {
        self.prompt = Some(prompt);
        self
    }

    /// Authorizes these scopes (incremental consent) instead of the sign-in scopes.
    pub fn with_scopes(mut self, scopes: ResourceScopes) -> Self {
        self.scopes = Some(scopes);
        self
    }

    /// Sends a claims challenge to satisfy.
    pub fn with_claims(mut self, claims: impl Into<String>) -> Self {
        self.claims = Some(claims.into());
        self
    }
}

/// Why a hint was refused.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum InvalidHint {
    /// Empty, too long, or characters a sign-in name does not have.
    #[error("login_hint must be a sign-in name (at most {MAX_LOGIN_HINT_LENGTH} characters, no spaces or quotes)")]
    LoginHint,
    /// Not a domain name, `organizations` or `consumers`.
    #[error("domain_hint must be a domain such as contoso.com, or organizations or consumers")]
    DomainHint,
    /// Not one of the prompts an interactive sign-in may ask for.
    #[error("prompt must be select_account, login or consent")]
    Prompt,
    /// Not one resource's scopes (at most ten, each a permission name or URI).
    #[error(
        "scopes must be at most ten permissions of one resource, such as Mail.Read or api://<app id>/access_as_user"
    )]
    Scopes,
}

/// The most scopes one incremental consent may ask for.
pub const MAX_SCOPES: usize = 10;
/// Microsoft Graph, the resource of bare permission names (`User.Read`).
pub const GRAPH_RESOURCE: &str = "https://graph.microsoft.com";

/// Permissions of one resource, validated: bare Graph names (`Mail.Read`),
/// `https://graph.microsoft.com/Mail.Read`, or `api://<app id>/<name>`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ResourceScopes {
    resource: String,
    scopes: Vec<String>,
}

impl ResourceScopes {
    /// The resource they are for: `https://graph.microsoft.com`, `api://<app id>`...
    pub fn resource(&self) -> &str {
        &self.resource
    }

    /// The scopes, as asked.
    pub fn scopes(&self) -> &[String] {
        &self.scopes
    }

    /// Space-separated, for a `scope` parameter.
    pub fn to_scope_string(&self) -> String {
        self.scopes.join(" ")
    }

    /// Whether `granted` (a token's scopes, bare or with their resource) covers every one.
    pub fn covered_by(&self, granted: &[String]) -> bool {
        self.scopes.iter().all(|wanted| {
            let name = permission_name(wanted);
            granted
                .iter()
                .any(|held| held.eq_ignore_ascii_case(wanted) || permission_name(held).eq_ignore_ascii_case(name))
        })
    }
}

/// The resource of one scope: its URI's origin (`api://x`, `https://host`), Graph for a bare name.
pub fn resource_of(scope: &str) -> String {
    match scope.find("://").map(|at| at + 3) {
        Some(after_scheme) => match scope[after_scheme..].find('/') {
            Some(slash) => scope[..after_scheme + slash].to_owned(),
            None => scope.to_owned(),
        },
        None => GRAPH_RESOURCE.to_owned(),
    }
}

/// A scope's name within its resource.
fn permission_name(scope: &str) -> &str {
    match scope.find("://") {
        Some(at) => scope[at + 3..].split_once('/').map(|(_, name)| name).unwrap_or(scope),
        None => scope,
    }
}

impl FromStr for ResourceScopes {
    type Err = InvalidHint;

    fn from_str(value: &str) -> Result<Self, Self::Err> {
        let allowed = |c: char| c.is_ascii_alphanumeric() || "._:/-".contains(c);
        let scopes: Vec<String> = value.split_whitespace().map(str::to_owned).collect();
        if scopes.is_empty()
            || scopes.len() > MAX_SCOPES
            || scopes.iter().any(|scope| scope.len() > 256 || !scope.chars().all(allowed))
            || scopes.iter().any(|scope| ["openid", "profile", "email", "offline_access"].contains(&scope.as_str()))
        {
            return Err(InvalidHint::Scopes);
        }
        let resource = resource_of(&scopes[0]);
        if scopes.iter().any(|scope| resource_of(scope) != resource) {
            return Err(InvalidHint::Scopes);
        }
        Ok(Self { resource, scopes })
    }
}

/// A validated `login_hint`: a sign-in name such as `adele@contoso.com`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LoginHint(String);

impl FromStr for LoginHint {
    type Err = InvalidHint;

    fn from_str(value: &str) -> Result<Self, Self::Err> {
        // The characters of an email address's local part and domain; nothing that could end an
        // attribute or a header, no whitespace, no control characters.
        let allowed = |c: char| c.is_ascii_alphanumeric() || "@.-_+'#$%&*/=?^`{|}~!".contains(c);
        if value.is_empty() || value.len() > MAX_LOGIN_HINT_LENGTH || !value.chars().all(allowed) {
            return Err(InvalidHint::LoginHint);
        }
        Ok(Self(value.to_owned()))
    }
}

/// A validated `domain_hint`: a verified domain, `organizations` or `consumers`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DomainHint(String);

impl FromStr for DomainHint {
    type Err = InvalidHint;

    fn from_str(value: &str) -> Result<Self, Self::Err> {
        let lower = value.to_ascii_lowercase();
        if lower == "organizations" || lower == "consumers" {
            return Ok(Self(lower));
        }
        let is_domain = lower.len() <= MAX_DOMAIN_HINT_LENGTH && is_domain_name(&lower);
        if is_domain { Ok(Self(lower)) } else { Err(InvalidHint::DomainHint) }
    }
}

/// The `prompt` values an interactive sign-in may send (`none` is for silent requests only).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Prompt {
    /// Show the account picker ("use another account").
    SelectAccount,
    /// Ask for credentials even with a single-sign-on session.
    Login,
    /// Show the consent page again.
    Consent,
}

impl FromStr for Prompt {
    type Err = InvalidHint;

    fn from_str(value: &str) -> Result<Self, Self::Err> {
        match value {
            "select_account" => Ok(Prompt::SelectAccount),
            "login" => Ok(Prompt::Login),
            "consent" => Ok(Prompt::Consent),
            _ => Err(InvalidHint::Prompt),
        }
    }
}

impl Prompt {
    /// The parameter value.
    pub fn as_str(self) -> &'static str {
        match self {
            Prompt::SelectAccount => "select_account",
            Prompt::Login => "login",
            Prompt::Consent => "consent",
        }
    }
}

impl LoginHint {
    /// The hint.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl DomainHint {
    /// The hint, lowercased.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sign_in_names_pass_and_anything_else_is_refused() {
        for good in ["adele@contoso.com", "o'brien@x.test", "user_ext#EXT#@tenant.onmicrosoft.com", "a"] {
            assert_eq!(good.parse::<LoginHint>().map(|h| h.as_str().to_owned()), Ok(good.to_owned()));
        }
        let too_long = "a".repeat(MAX_LOGIN_HINT_LENGTH + 1);
        for bad in ["", "a b@x.test", "a\"@x.test", "<script>", "a\n@x.test", "é@x.test", too_long.as_str()] {
            assert_eq!(bad.parse::<LoginHint>(), Err(InvalidHint::LoginHint), "{bad:?}");
        }
        assert!("a".repeat(MAX_LOGIN_HINT_LENGTH).parse::<LoginHint>().is_ok());
    }

    #[test]
    fn domains_and_the_two_realms_pass() {
        assert_eq!("Contoso.COM".parse::<DomainHint>().unwrap().as_str(), "contoso.com");
        assert_eq!("consumers".parse::<DomainHint>().unwrap().as_str(), "consumers");
        assert_eq!("organizations".parse::<DomainHint>().unwrap().as_str(), "organizations");
        for bad in ["", "contoso", "-x.com", "x-.com", "a..com", "x.com/evil", "x.com&prompt=none", "common"] {
            assert_eq!(bad.parse::<DomainHint>(), Err(InvalidHint::DomainHint), "{bad:?}");
        }
        let long = format!("{}.com", vec!["a".repeat(63); 4].join("."));
        assert!(long.len() > MAX_DOMAIN_HINT_LENGTH);
        assert_eq!(long.parse::<DomainHint>(), Err(InvalidHint::DomainHint));
    }

    #[test]
    fn scopes_of_one_resource_pass_and_mixtures_do_not() {
        let mail: ResourceScopes = "Mail.Read https://graph.microsoft.com/Calendars.Read".parse().unwrap();
        assert_eq!(mail.resource(), GRAPH_RESOURCE);
        // As asked, in order: the pending sign-in checks the granted token against these.
        assert_eq!(mail.scopes(), ["Mail.Read", "https://graph.microsoft.com/Calendars.Read"]);
        assert!(mail.covered_by(&["User.Read".into(), "Mail.Read".into(), "Calendars.Read".into()]));
        assert!(!mail.covered_by(&["User.Read".into(), "Mail.Read".into()]));
        let api: ResourceScopes = "api://3f1c9a2e-8b4d-4c6f-a1e7-0d5b2c8e9f41/access_as_user".parse().unwrap();
        assert_eq!(api.resource(), "api://3f1c9a2e-8b4d-4c6f-a1e7-0d5b2c8e9f41");
        assert!(api.covered_by(&["access_as_user".into()]));
        // Short resource names: the origin ends at the first slash after the scheme's `://`.
        assert_eq!(resource_of("api://ab/read"), "api://ab");
        assert_eq!(resource_of("https://x.io/y"), "https://x.io");
        assert_eq!(resource_of("Mail.Read"), GRAPH_RESOURCE);
        let short: ResourceScopes = "api://ab/read".parse().unwrap();
        assert!(short.covered_by(&["read".into()]));
        assert!(!short.covered_by(&["write".into()]));
        // A scope of 256 characters at most; MAX_SCOPES at once, and not one more (below).
        assert!("a".repeat(256).parse::<ResourceScopes>().is_ok());
        assert_eq!("a".repeat(257).parse::<ResourceScopes>(), Err(InvalidHint::Scopes));
        assert_eq!("a b c d e f g h i j".parse::<ResourceScopes>().map(|s| s.scopes().len()), Ok(MAX_SCOPES));
        for bad in ["", "Mail.Read api://x/y", "openid", "Mail.Read\"", "a b c d e f g h i j k"] {
            assert_eq!(bad.parse::<ResourceScopes>(), Err(InvalidHint::Scopes), "{bad:?}");
        }
    }

    #[test]
    fn only_interactive_prompts_pass() {
        for prompt in [Prompt::SelectAccount, Prompt::Login, Prompt::Consent] {
            assert_eq!(prompt.as_str().parse::<Prompt>(), Ok(prompt));
        }
        for bad in ["none", "create", "LOGIN", ""] {
            assert_eq!(bad.parse::<Prompt>(), Err(InvalidHint::Prompt), "{bad:?}");
        }
    }
}
