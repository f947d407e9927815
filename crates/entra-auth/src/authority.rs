//! The Entra authority: login host plus tenant, and the v2.0 URLs derived from them.
//! See `docs/ENTRA.md`, "Endpoints and discovery".

use std::fmt;
use std::str::FromStr;

use url::Url;
use uuid::Uuid;

/// The `{tenant}` segment of an authority.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Tenant {
    /// A directory id: single-tenant app.
    Id(Uuid),
    /// A verified domain such as `contoso.onmicrosoft.com`.
    Domain(String),
    /// Work, school and personal accounts.
    Common,
    /// Work and school accounts of any tenant.
    Organizations,
    /// Personal Microsoft accounts only.
    Consumers,
}

/// The tenant personal Microsoft accounts belong to.
pub const CONSUMERS_TENANT_ID: Uuid = Uuid::from_u128(0x9188040d_6c67_4c5b_b112_36a304b66dad);

/// Why a tenant value was refused.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("'{0}' is neither a tenant GUID, a domain (contoso.onmicrosoft.com) nor common, organizations or consumers")]
pub struct InvalidTenant(pub String);

impl FromStr for Tenant {
    type Err = InvalidTenant;

    fn from_str(value: &str) -> Result<Self, Self::Err> {
        let value = value.trim();
        if let Ok(id) = Uuid::parse_str(value) {
            return Ok(Tenant::Id(id));
        }
        match value.to_ascii_lowercase().as_str() {
            "common" => return Ok(Tenant::Common),
            "organizations" => return Ok(Tenant::Organizations),
            "consumers" => return Ok(Tenant::Consumers),
            _ => {}
        }
        if is_domain_name(value) {
            Ok(Tenant::Domain(value.to_ascii_lowercase()))
        } else {
            Err(InvalidTenant(value.to_owned()))
        }
    }
}

/// A DNS name of at least two labels (`contoso.com`): letters, digits and inner hyphens, 63
/// characters a label at most.
pub(crate) fn is_domain_name(value: &str) -> bool {
    let labels: Vec<&str> = value.split('.').collect();
    labels.len() >= 2
        && labels.iter().all(|label| {
            !label.is_empty()
                && label.len() <= 63
                && label.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
                && !label.starts_with('-')
                && !label.ends_with('-')
        })
}

impl fmt::Display for Tenant {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Tenant::Id(id) => write!(f, "{id}"),
            Tenant::Domain(domain) => f.write_str(domain),
            Tenant::Common => f.write_str("common"),
            Tenant::Organizations => f.write_str("organizations"),
            Tenant::Consumers => f.write_str("consumers"),
        }
    }
}

impl Tenant {
    /// Whether a token's `tid` is acceptable for this authority.
    pub fn accepts(&self, tid: Uuid) -> bool {
        match self {
            Tenant::Id(id) => *id == tid,
            Tenant::Consumers => tid == CONSUMERS_TENANT_ID,
            Tenant::Organizations => tid != CONSUMERS_TENANT_ID,
            // A domain resolves to one tenant; its issuer check (exact match) pins it.
            Tenant::Domain(_) | Tenant::Common => true,
        }
    }
}

/// The login host of Microsoft's global cloud.
pub const PUBLIC_CLOUD_HOST: &str = "https://login.microsoftonline.com";

/// Login host (`https://login.microsoftonline.com`, a national cloud, or the emulator) + tenant.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Authority {
    host: Url,
    tenant: Tenant,
}

impl Authority {
    /// Builds an authority; `host` is the scheme and host (and port), any path is ignored.
    pub fn new(host: Url, tenant: Tenant) -> Self {
        let mut host = host;
        host.set_path("");
        host.set_query(None);
        host.set_fragment(None);
        Self { host, tenant }
    }

    /// `https://login.microsoftonline.com` (the global cloud) + `tenant`.
    pub fn public_cloud(tenant: Tenant) -> Self {
        let host = Url::parse(PUBLIC_CLOUD_HOST).unwrap_or_else(|_| unreachable!("a valid constant"));
        Self::new(host, tenant)
    }

    /// The tenant.
    pub fn tenant(&self) -> &Tenant {
        &self.tenant
    }

    /// `{host}/{tenant}`.
    pub fn url(&self) -> String {
        format!("{}/{}", self.host.as_str().trim_end_matches('/'), self.tenant)
    }

    /// The login host's origin (`https://login.microsoftonline.com`), e.g. for CSP.
    pub fn origin(&self) -> String {
        self.host.origin().ascii_serialization()
    }

    /// The issuer of v1.0 access tokens for tenant `tid`: `https://sts.windows.net/{tid}/`, or
    /// `https://sts.chinacloudapi.cn/{tid}/` in the cloud operated by 21Vianet (whose login host is
    /// `login.chinacloudapi.cn`). v2.0 tokens carry the discovery document's issuer instead.
    pub fn v1_issuer_for(&self, tid: Uuid) -> String {
        let sts = match self.host.host_str() {
            Some("login.chinacloudapi.cn") => "sts.chinacloudapi.cn",
            _ => "sts.windows.net",
        };
        format!("https://{sts}/{tid}/")
    }

    /// `{host}/{tenant}/v2.0/.well-known/openid-configuration`.
    pub fn discovery_url(&self) -> String {
        format!("{}/v2.0/.well-known/openid-configuration", self.url())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tenants_parse_as_entra_accepts_them() {
        let id = "7e6b1c4a-2f0d-4a8e-9c3b-5d1e8f2a6b90";
        assert_eq!(id.parse::<Tenant>().unwrap(), Tenant::Id(Uuid::parse_str(id).unwrap()));
        assert_eq!("Common".parse::<Tenant>().unwrap(), Tenant::Common);
        assert_eq!("organizations".parse::<Tenant>().unwrap(), Tenant::Organizations);
        assert_eq!("CONSUMERS".parse::<Tenant>().unwrap(), Tenant::Consumers);
        assert_eq!(
            "Contoso.onmicrosoft.com".parse::<Tenant>().unwrap(),
            Tenant::Domain("contoso.onmicrosoft.com".into())
        );
        for bad in ["", "not a tenant", "contoso", "-bad.example", "a..b", "x/y.example"] {
            assert!(bad.parse::<Tenant>().is_err(), "{bad:?}");
        }
    }

    #[test]
    fn authority_urls_follow_the_v2_layout() {
        let authority = Authority::new(Url::parse("https://login.microsoftonline.us/").unwrap(), Tenant::Common);
        assert_eq!(authority.url(), "https://login.microsoftonline.us/common");
        assert_eq!(
            authority.discovery_url(),
            "https://login.microsoftonline.us/common/v2.0/.well-known/openid-configuration"
        );
        let emulator = Authority::new(Url::parse("http://127.0.0.1:4011/some/path?x=1").unwrap(), Tenant::Common);
        assert_eq!(emulator.origin(), "http://127.0.0.1:4011", "scheme, host and port only");
        assert_eq!(emulator.url(), "http://127.0.0.1:4011/common");
    }

    #[test]
    fn each_tenant_setting_accepts_exactly_its_tenants() {
        let work = Uuid::from_u128(0x7e6b1c4a_2f0d_4a8e_9c3b_5d1e8f2a6b90);
        assert!(!Tenant::Organizations.accepts(CONSUMERS_TENANT_ID));
        assert!(Tenant::Organizations.accepts(work));
        assert!(Tenant::Consumers.accepts(CONSUMERS_TENANT_ID));
        assert!(!Tenant::Consumers.accepts(work));
        assert!(!Tenant::Id(Uuid::nil()).accepts(CONSUMERS_TENANT_ID));
        assert!(Tenant::Id(work).accepts(work));
        assert!(!Tenant::Id(work).accepts(Uuid::nil()));
        // Any tenant: the issuer check (exact, per tid) is what pins a token down.
        assert!(Tenant::Common.accepts(work) && Tenant::Common.accepts(CONSUMERS_TENANT_ID));
        assert!(Tenant::Domain("contoso.onmicrosoft.com".into()).accepts(work));
    }
}
