//! Collecting every bad setting before stopping: each names its variable and says how to fix it.

use std::fmt;
use std::net::IpAddr;

use url::Url;

/// One bad setting.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigProblem {
    /// The environment variable.
    pub variable: &'static str,
    /// What is wrong and how to fix it.
    pub problem: String,
}

/// Every bad setting at once.
#[derive(Debug)]
pub struct ConfigErrors(pub Vec<ConfigProblem>);

impl fmt::Display for ConfigErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "entra-webapp cannot start: {} setting(s) need fixing:", self.0.len())?;
        for problem in &self.0 {
            writeln!(f, "  - {}: {}", problem.variable, problem.problem)?;
        }
        write!(f, "Set them as environment variables (or in .env); `entra-webapp serve --help` lists every setting.")
    }
}

impl std::error::Error for ConfigErrors {}

/// The problems found so far; validation goes on after each so all are reported at once.
pub(crate) struct Problems(pub(crate) Vec<ConfigProblem>);

impl Problems {
    /// Notes a problem with `variable`.
    pub(crate) fn add(&mut self, variable: &'static str, problem: impl Into<String>) {
        self.0.push(ConfigProblem { variable, problem: problem.into() });
    }

    /// A required value: present, non-empty, not an unresolved Key Vault reference.
    pub(crate) fn required(
        &mut self,
        variable: &'static str,
        value: &Option<String>,
        how_to_get: &str,
    ) -> Option<String> {
        match value.as_deref().map(str::trim) {
            None | Some("") => {
                self.add(variable, format!("is not set. {how_to_get}"));
                None
            }
            Some(value) => self.resolved(variable, value),
        }
    }

    /// A true/false setting (`true`, `1`, `yes`, `on` and their opposites).
    pub(crate) fn boolean(&mut self, variable: &'static str, value: &str) -> bool {
        match value.trim().to_ascii_lowercase().as_str() {
            "true" | "1" | "yes" | "on" => true,
            "false" | "0" | "no" | "off" | "" => false,
            other => {
                self.add(variable, format!("'{other}' is not true or false."));
                false
            }
        }
    }

    /// App Service leaves a Key Vault reference it cannot resolve as the literal text.
    pub(crate) fn resolved(&mut self, variable: &'static str, value: &str) -> Option<String> {
        if value.starts_with("@Microsoft.KeyVault(") {
            self.add(
                variable,
                "is still a literal @Microsoft.KeyVault(...) reference: App Service could not resolve it. Give the web app's managed identity 'get' access to the secret (Key Vault Secrets User) and check the reference's SecretUri.",
            );
            return None;
        }
        Some(value.to_owned())
    }

    /// An absolute http(s) URL.
    pub(crate) fn url(&mut self, variable: &'static str, value: &str, example: &str) -> Option<Url> {
        match Url::parse(value.trim()) {
            Ok(url) if matches!(url.scheme(), "http" | "https") && url.host().is_some() => Some(url),
            Ok(_) => {
                self.add(variable, format!("'{value}' is not an http(s) URL. Example: {example}"));
                None
            }
            Err(_) => {
                self.add(variable, format!("'{value}' is not an absolute URL. Example: {example}"));
                None
            }
        }
    }

    /// Entra accepts plain http only for localhost redirect URIs; we hold every URL to that.
    pub(crate) fn https_unless_loopback(&mut self, variable: &'static str, url: &Url) -> bool {
        let loopback = matches!(url.host_str(), Some("localhost" | "127.0.0.1" | "[::1]"));
        if url.scheme() == "http" && !loopback {
            self.add(
                variable,
                format!(
                    "'{url}' uses http for a host other than localhost; Entra ID rejects that. Use https://{}{}",
                    url.host_str().unwrap_or("<host>"),
                    url.path()
                ),
            );
            return false;
        }
        true
    }
}

pub(crate) fn is_loopback(url: &Url) -> bool {
    match url.host() {
        // redis:// is not a special scheme: its host arrives as text, IP addresses included.
        Some(url::Host::Domain(domain)) => {
            domain.eq_ignore_ascii_case("localhost")
                || domain
                    .trim_start_matches('[')
                    .trim_end_matches(']')
                    .parse::<IpAddr>()
                    .is_ok_and(|ip| ip.is_loopback())
        }
        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
        None => false,
    }
}
