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

/// The longest value an app role may have (Microsoft Graph's `appRole.value`:
/// <https://learn.microsoft.com/graph/api/resources/approle>).
const MAX_APP_ROLE_VALUE: usize = 120;

/// Whether `role` can be an app role's value: at most 120 characters, printable ASCII, no spaces.
pub(crate) fn is_app_role_value(role: &str) -> bool {
    role.len() <= MAX_APP_ROLE_VALUE && role.chars().all(|c| c.is_ascii_graphic())
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
        if !is_app_role_value(role) {
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_app_role_value_is_printable_ascii_of_at_most_120_characters() {
        assert!(
            is_app_role_value("Reader") && is_app_role_value("Task.Write:All") && is_app_role_value(&"r".repeat(120))
        );
        for role in ["Read er", "Read\u{7f}er", "Lecteur·rice", &"r".repeat(121)] {
            assert!(!is_app_role_value(role), "{role}");
        }
    }
}
