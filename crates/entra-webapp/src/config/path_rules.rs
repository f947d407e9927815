//! Who may reach which paths of the app behind (`PROXY_PATH_ROLES`, `PROXY_PATH_GROUPS`): on top
//! of `ALLOWED_ROLES`/`ALLOWED_GROUPS`, each rule asks one of its roles (or groups) of a user for
//! the paths it names, e.g. `/admin/*=Admin; /reports/*=Reader,Admin`.
//!
//! A rule restricts, so a path must not slip past one by being spelt differently from how the app
//! behind reads it: rules are matched without regard to case (ASP.NET and IIS route so), and
//! against both the path as sent and the path as servers may read it (percent-decoded, twice for
//! apps that decode twice; a backslash as a slash; `;` parameters dropped, as Tomcat does; empty
//! and dot segments resolved; a segment's trailing dots and spaces dropped, as Windows does).
//! Every rule either form matches applies.

use entra_auth::axum::{AccessDenied, AccessPolicy, SignedInUser};
use percent_encoding::percent_decode_str;
use uuid::Uuid;

use crate::config::access::{guids, is_app_role_value};
use crate::config::problems::Problems;
use crate::config::settings::Settings;

/// Paths and what a user needs to reach them.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PathRule {
    /// Lowercase: `/admin` (that path), or `/admin/` for `/admin/*` (that path and every path
    /// under it).
    pattern: String,
    prefix: bool,
    /// One of its roles, or one of its groups.
    pub policy: AccessPolicy,
    /// The setting it comes from (`PROXY_PATH_ROLES`, `PROXY_PATH_GROUPS`).
    variable: &'static str,
}

impl std::fmt::Display for PathRule {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.prefix {
            true => write!(f, "{}*", self.pattern),
            false => f.write_str(&self.pattern),
        }
    }
}

impl PathRule {
    /// The setting it comes from.
    pub(crate) fn variable(&self) -> &'static str {
        self.variable
    }

    /// Whether the paths this rule names all lie within an anonymous path (`path`, or with
    /// `prefix` every path starting with it): anyone may reach them, so the rule would never
    /// apply. Compared without regard to case, as rules match.
    pub(crate) fn lies_within(&self, path: &str, prefix: bool) -> bool {
        let anonymous = path.to_lowercase();
        match prefix {
            true => self.pattern.starts_with(&anonymous),
            false => !self.prefix && self.pattern == anonymous,
        }
    }

    fn matches(&self, path: &str) -> bool {
        match self.prefix {
            // `/admin/*` guards `/admin` too: the page at the folder's own name is usually its index.
            true => path.starts_with(&self.pattern) || path == &self.pattern[..self.pattern.len() - 1],
            // `/reports/` is `/reports` to most routers (ASP.NET, Express, Flask's redirect).
            false => path == self.pattern || path.strip_suffix('/') == Some(self.pattern.as_str()),
        }
    }
}

/// The policies of every rule that applies to `path` (a request path, without query).
fn policies_for<'a>(rules: &'a [PathRule], path: &str) -> impl Iterator<Item = &'a AccessPolicy> {
    let (sent, read) = match rules.is_empty() {
        true => (String::new(), String::new()),
        false => (path.to_lowercase(), as_servers_read(path)),
    };
    rules.iter().filter(move |rule| rule.matches(&sent) || rule.matches(&read)).map(|rule| &rule.policy)
}

/// Whether a rule guards `path` (a request path, without query).
pub fn guards(rules: &[PathRule], path: &str) -> bool {
    policies_for(rules, path).next().is_some()
}

/// Whether `user` may reach `path` of the app behind: the access policy lets them in, and so
/// does every path rule of `path` (`None`, a path not known: every rule).
pub fn may_reach(
    policy: &AccessPolicy,
    rules: &[PathRule],
    path: Option<&str>,
    user: &SignedInUser,
) -> Result<(), AccessDenied> {
    policy.check(user)?;
    match path {
        Some(path) => policies_for(rules, path).try_for_each(|rule| rule.check(user)),
        None => rules.iter().try_for_each(|rule| rule.policy.check(user)),
    }
}

/// `path` as a server may read it: percent-decoded (twice), `\` as `/`, `;` parameters dropped,
/// empty and dot segments resolved, trailing dots and spaces of a segment dropped, lowercase;
/// without a trailing slash.
fn as_servers_read(path: &str) -> String {
    let once = percent_decode_str(path).decode_utf8_lossy();
    let twice = percent_decode_str(&once).decode_utf8_lossy().replace('\\', "/");
    let mut segments: Vec<&str> = Vec::new();
    for segment in twice.split('/') {
        match segment.split(';').next().unwrap_or_default() {
            "" | "." => {}
            ".." => {
                segments.pop();
            }
            // Windows (IIS) drops a segment's trailing dots and spaces: `/admin./` is `/admin/`.
            segment => match segment.trim_end_matches(['.', ' ']) {
                "" => {}
                segment => segments.push(segment),
            },
        }
    }
    // No trailing slash: rules match `/x` and `/x/` alike.
    format!("/{}", segments.join("/")).to_lowercase()
}

/// `PROXY_PATH_ROLES` and `PROXY_PATH_GROUPS`.
pub(crate) fn validate(settings: &Settings, problems: &mut Problems) -> Vec<PathRule> {
    let mut rules = Vec::new();
    for (variable, value) in
        [("PROXY_PATH_ROLES", &settings.proxy_path_roles), ("PROXY_PATH_GROUPS", &settings.proxy_path_groups)]
    {
        for rule in value.as_deref().unwrap_or_default().split(';').map(str::trim).filter(|rule| !rule.is_empty()) {
            let Some((pattern, needed)) = rule.split_once('=') else {
                problems.add(variable, format!("'{rule}' is not PATH=VALUE,VALUE (e.g. /admin/*=Admin)."));
                continue;
            };
            let Some((pattern, prefix)) = pattern_of(pattern.trim()) else {
                problems.add(
                    variable,
                    format!("'{pattern}' is not a path such as /admin or /admin/* (a * only at the end)."),
                );
                continue;
            };
            let policy = match variable {
                "PROXY_PATH_ROLES" => {
                    let roles: Vec<&str> = needed.split(',').map(str::trim).filter(|role| !role.is_empty()).collect();
                    if let Some(role) = roles.iter().find(|role| !is_app_role_value(role)) {
                        problems.add(
                            variable,
                            format!("'{role}' is not an app role value (the Value column of App roles)."),
                        );
                    }
                    AccessPolicy::new().require_any_role(roles)
                }
                _ => AccessPolicy::new()
                    .require_any_group(guids(variable, Some(needed), "group", problems).iter().map(Uuid::to_string)),
            };
            if policy.is_empty() {
                problems.add(variable, format!("'{rule}' names nobody who may reach {pattern}."));
                continue;
            }
            rules.push(PathRule { pattern, prefix, policy, variable });
        }
    }
    rules
}

/// A rule's path, lowercase, and whether it covers the paths under it (`/admin/*`).
fn pattern_of(pattern: &str) -> Option<(String, bool)> {
    let (path, prefix) = match pattern.strip_suffix("/*") {
        Some(folder) => (format!("{folder}/"), true),
        None => (pattern.to_owned(), false),
    };
    let plain = path.starts_with('/')
        && !path.contains(['*', '?', '%', '\\', ';'])
        && !path.split('/').any(|s| s == "." || s == "..");
    plain.then(|| (path.to_lowercase(), prefix))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rules(roles: &str) -> Vec<PathRule> {
        let settings = Settings { proxy_path_roles: Some(roles.to_owned()), ..Settings::default() };
        let mut problems = Problems(Vec::new());
        let rules = validate(&settings, &mut problems);
        assert!(problems.0.is_empty(), "{:?}", problems.0);
        rules
    }

    fn guarded(rules: &[PathRule], path: &str) -> usize {
        policies_for(rules, path).count()
    }

    #[test]
    fn a_rule_guards_its_paths_however_they_are_spelt() {
        let admin = rules("/admin/*=Admin; /reports=Reader,Admin");
        for path in [
            "/admin",
            "/admin/",
            "/admin/users",
            "/ADMIN/users",
            "/Admin",
            "//admin/users",
            "/./admin/users",
            "/static/../admin/users",
            "/static/%2e%2e/admin/users",
            "/static/%252e%252e/admin/users",
            "/%61dmin/users",
            "/admin;jsessionid=1/users",
            "/static\\..\\admin\\users",
            "/static%2f..%2fadmin/users",
            "/admin./users",
            "/admin%20/users",
            "/admin.%20.",
        ] {
            assert_eq!(guarded(&admin, path), 1, "{path}");
        }
        for path in ["/", "/administrator", "/admins/x", "/public/admin", "/reports/x", "/static/..admin"] {
            assert_eq!(guarded(&admin, path), 0, "{path}");
        }
        for path in ["/Reports", "/reports/", "/reports%2f", "/reports.", "/reports//"] {
            assert_eq!(guarded(&admin, path), 1, "{path}");
        }
        let home = rules("/=Admin");
        assert_eq!((guarded(&home, "/"), guarded(&home, "//"), guarded(&home, "/x")), (1, 1, 0));
        // Every rule that applies: a path under two rules needs both.
        let nested = rules("/admin/*=Admin; /admin/billing/*=Billing");
        assert_eq!(guarded(&nested, "/admin/billing/invoices"), 2);
        assert_eq!(guarded(&nested, "/admin/users"), 1);
    }

    #[test]
    fn each_bad_rule_is_named() {
        for (roles, groups) in [
            ("admin=Admin", ""),
            ("/admin/*", ""),
            ("/admin*=Admin", ""),
            ("/admin/../x=Admin", ""),
            ("/admin/*=", ""),
            ("/admin/*=Not a role", ""),
            ("", "/finance/*=not-a-guid"),
        ] {
            let settings = Settings {
                proxy_path_roles: Some(roles.to_owned()),
                proxy_path_groups: Some(groups.to_owned()),
                ..Settings::default()
            };
            let mut problems = Problems(Vec::new());
            validate(&settings, &mut problems);
            let named: Vec<_> = problems.0.iter().map(|problem| problem.variable).collect();
            let expected = if roles.is_empty() { "PROXY_PATH_GROUPS" } else { "PROXY_PATH_ROLES" };
            assert!(!named.is_empty() && named.iter().all(|name| *name == expected), "{roles} {groups}: {named:?}");
        }
    }
}
