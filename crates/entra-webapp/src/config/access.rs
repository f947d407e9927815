//! Who may come in: `ALLOWED_TENANTS` (checked at sign-in and on every page), `ALLOWED_ROLES`
//! and `ALLOWED_GROUPS` (any-of, on every signed-in page), into entra-auth's [`AccessPolicy`].

use entra_auth::Tenant;
use entra_auth::axum::AccessPolicy;
use uuid::Uuid;

use crate::config::problems::Problems;
use crate::config::settings::Settings;

/// Who may come in.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct AccessConfig {
    /// `None`: every tenant the authority accepts (`ALLOWED_TENANTS=*` or a single tenant).
    pub allowed_tenants: Option<Vec<Uuid>>,
    /// Checked on every signed-in page.
    pub policy: AccessPolicy,
}

fn items(value: Option<&str>) -> Vec<&str> {
    value.unwrap_or_default().split([',', ' ']).map(str::trim).filter(|item| !item.is_empty()).collect()
}

pub(crate) fn guids(variable: &'static str, value: Option<&str>, what: &str, problems: &mut Problems) -> Vec<Uuid> {
    items(value)
        .into_iter()
        .filter_map(|item| match Uuid::parse_str(item) {
            Ok(id) => Some(id),
            Err(_) => {
                problems.add(variable, format!("'{item}' is not a GUID; list {what} object ids, separated by commas."));
                None
            }
        })
        .collect()
}

pub(crate) fn validate(settings: &Settings, problems: &mut Problems) -> Option<AccessConfig> {
    let tenant = settings.tenant_id.as_deref().and_then(|value| value.parse::<Tenant>().ok());
    let multi_tenant = matches!(tenant, Some(Tenant::Common | Tenant::Organizations | Tenant::Consumers));
    let allowed_tenants = match settings.allowed_tenants.as_deref().map(str::trim) {
        Some("*") => None,
        None | Some("") if multi_tenant => {
            problems.add(
                "ALLOWED_TENANTS",
                "is required when TENANT_ID is common, organizations or consumers: without it anyone with an account in any tenant can sign in. List the tenant ids allowed, comma-separated, or set it to * to allow every tenant on purpose.",
            );
            None
        }
        None | Some("") => None,
        Some(list) => Some(guids("ALLOWED_TENANTS", Some(list), "tenant (directory)", problems)),
    };
    let roles = items(settings.allowed_roles.as_deref());
    for role in &roles {
        if role.len() > 120 || !role.chars().all(|c| c.is_ascii_graphic()) {
            problems
                .add("ALLOWED_ROLES", format!("'{role}' is not an app role value (the Value column of App roles)."));
        }
    }
    let groups = guids("ALLOWED_GROUPS", settings.allowed_groups.as_deref(), "group", problems);
    let policy = AccessPolicy::new()
        .allow_tenants(allowed_tenants.clone().unwrap_or_default())
        .require_any_role(roles)
        .require_any_group(groups.iter().map(Uuid::to_string));
    Some(AccessConfig { allowed_tenants, policy })
}
