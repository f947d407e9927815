//! What the signed-in user is: app roles, groups and directory roles, from the ID token, with the
//! groups overage resolved through Microsoft Graph. See `docs/ENTRA.md`, "Groups and overage".

use serde::{Deserialize, Serialize};

use crate::id_token::IdTokenClaims;

/// The user's app roles, groups and directory roles. Server-side only, like the tokens.
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub struct Memberships {
    /// App role values assigned to the user for this app (`roles`).
    pub roles: Vec<String>,
    /// Object ids of the user's groups (`groups`, or Graph when the token had too many).
    pub groups: Vec<String>,
    /// Directory role template ids (`wids`).
    pub wids: Vec<String>,
    /// The ID token said the user has more groups than it can carry (overage) and `groups` was
    /// read from Microsoft Graph instead.
    pub groups_from_graph: bool,
}

impl Memberships {
    /// Roles, groups and directory roles as the ID token states them; `groups` empty on overage
    /// (see [`needs_graph_for_groups`]).
    pub(crate) fn from_claims(claims: &IdTokenClaims) -> Self {
        Self {
            roles: claims.roles.clone(),
            groups: claims.groups.clone(),
            wids: claims.wids.clone(),
            groups_from_graph: false,
        }
    }

    /// Whether the user has app role `role` (exact, as Entra compares role values).
    pub fn has_role(&self, role: &str) -> bool {
        self.roles.iter().any(|held| held == role)
    }

    /// Whether the user is a member of group `id` (object ids compared case-insensitively).
    pub fn in_group(&self, id: &str) -> bool {
        self.groups.iter().any(|group| group.eq_ignore_ascii_case(id))
    }
}

/// Whether the ID token signals groups overage: `_claim_names.groups` (JWTs with more groups than
/// fit) or `hasgroups` (implicit-flow tokens).
pub(crate) fn needs_graph_for_groups(claims: &IdTokenClaims) -> bool {
    claims.hasgroups == Some(true) || claims.claim_names.as_ref().is_some_and(|names| names.get("groups").is_some())
}

/// The `claims` request parameter: a claims challenge to satisfy (if any) merged with the client
/// capabilities the app declares (`xms_cc`, e.g. `cp1` for continuous access evaluation), as
/// MSAL's `client_capabilities` does. `None` when there is nothing to ask for.
pub(crate) fn claims_request(challenge: Option<&str>, capabilities: &[String]) -> Option<String> {
    let parsed = challenge.and_then(|text| serde_json::from_str::<serde_json::Value>(text).ok());
    let mut request = match (parsed, challenge) {
        (Some(serde_json::Value::Object(object)), _) => serde_json::Value::Object(object),
        // A challenge we cannot read is passed on as it came; Entra judges it.
        (_, Some(text)) => return Some(text.to_owned()),
        (_, None) if capabilities.is_empty() => return None,
        (_, None) => serde_json::json!({}),
    };
    if !capabilities.is_empty() {
        let access_token =
            request.as_object_mut().map(|object| object.entry("access_token").or_insert_with(|| serde_json::json!({})));
        if let Some(serde_json::Value::Object(access_token)) = access_token {
            access_token.insert("xms_cc".to_owned(), serde_json::json!({ "values": capabilities }));
        }
    }
    Some(request.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn capabilities_are_merged_into_a_challenge() {
        let cp1 = vec!["cp1".to_owned()];
        assert_eq!(claims_request(None, &[]), None);
        assert_eq!(claims_request(None, &cp1).as_deref(), Some(r#"{"access_token":{"xms_cc":{"values":["cp1"]}}}"#));
        let challenge = r#"{"access_token":{"nbf":{"essential":true,"value":"17"}}}"#;
        let merged: serde_json::Value = serde_json::from_str(&claims_request(Some(challenge), &cp1).unwrap()).unwrap();
        assert_eq!(merged["access_token"]["nbf"]["value"], "17");
        assert_eq!(merged["access_token"]["xms_cc"]["values"][0], "cp1");
        assert_eq!(claims_request(Some(challenge), &[]).as_deref(), Some(challenge));
        assert_eq!(claims_request(Some("not json"), &cp1).as_deref(), Some("not json"));
    }

    fn claims(json: serde_json::Value) -> IdTokenClaims {
        let mut base = serde_json::json!({
            "oid": "00000000-0000-4000-8000-000000000001",
            "tid": "00000000-0000-4000-8000-000000000002",
            "sub": "s",
            "iss": "i",
        });
        if let (Some(base), Some(extra)) = (base.as_object_mut(), json.as_object()) {
            base.extend(extra.clone());
        }
        serde_json::from_value(base).unwrap()
    }

    #[test]
    fn memberships_come_from_the_roles_groups_and_wids_claims() {
        let memberships = Memberships::from_claims(&claims(serde_json::json!({
            "roles": ["Reader"], "groups": ["g1", "g2"], "wids": ["w1"],
        })));
        assert_eq!(memberships.roles, vec!["Reader"]);
        assert_eq!(memberships.groups, vec!["g1", "g2"]);
        assert_eq!(memberships.wids, vec!["w1"]);
        assert!(!memberships.groups_from_graph);
    }

    #[test]
    fn overage_is_signalled_by_claim_names_for_groups_or_by_hasgroups() {
        let overage = claims(serde_json::json!({ "_claim_names": { "groups": "src1" } }));
        assert!(needs_graph_for_groups(&overage));
        assert!(needs_graph_for_groups(&claims(serde_json::json!({ "hasgroups": true }))));
        assert!(!needs_graph_for_groups(&claims(serde_json::json!({ "hasgroups": false }))));
        assert!(!needs_graph_for_groups(&claims(serde_json::json!({ "_claim_names": { "other": "src1" } }))));
        assert!(!needs_graph_for_groups(&claims(serde_json::json!({ "groups": ["g1"] }))));
    }

    #[test]
    fn group_ids_compare_case_insensitively_and_roles_exactly() {
        let memberships = Memberships {
            roles: vec!["Reader".into()],
            groups: vec!["5A1E5000-0000-4000-8000-00000000A001".into()],
            ..Memberships::default()
        };
        assert!(memberships.in_group("5a1e5000-0000-4000-8000-00000000a001"));
        assert!(!memberships.in_group("5a1e5000-0000-4000-8000-00000000a002"));
        assert!(memberships.has_role("Reader") && !memberships.has_role("reader"));
    }
}
