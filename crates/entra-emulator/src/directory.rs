//! Who belongs to what: group memberships and app role assignments (changeable at run time over
//! `/_emulator`), and the authorization claims they put in ID tokens, with Entra's groups overage
//! claim above the limit. See `docs/ENTRA.md`, "Groups and overage".

use std::collections::HashMap;

use serde_json::{Map, Value, json};
use uuid::Uuid;

use crate::config::{ClientRegistration, Group, GroupMembershipClaims, User};

/// A user with its photo loaded.
#[derive(Clone, Debug)]
pub(crate) struct DirectoryUser {
    pub(crate) user: User,
    pub(crate) oid: Uuid,
    /// The home tenant.
    pub(crate) tenant_id: Uuid,
    pub(crate) photo: Option<Vec<u8>>,
}
/// The directory's groups and who is in them, and each user's app role assignments.
#[derive(Debug, Default)]
pub(crate) struct Memberships {
    groups: Vec<Group>,
    members: HashMap<Uuid, Vec<Uuid>>,
    app_roles: HashMap<Uuid, Vec<String>>,
}

/// A group id a change named that the directory does not have.
#[derive(Debug, thiserror::Error)]
#[error("no group {0} in the directory")]
pub(crate) struct UnknownGroup(pub(crate) Uuid);

impl Memberships {
    pub(crate) fn new(groups: Vec<Group>, users: &[DirectoryUser]) -> Result<Self, UnknownGroup> {
        let mut memberships = Self { groups, ..Self::default() };
        for user in users {
            memberships.set_groups(user.oid, &user.user.groups)?;
            memberships.app_roles.insert(user.oid, user.user.app_roles.clone());
        }
        Ok(memberships)
    }

    /// Every group of the directory.
    pub(crate) fn groups(&self) -> &[Group] {
        &self.groups
    }

    /// The user's groups, in the directory's order. Membership is direct; the emulator has no
    /// nested groups, so direct and transitive membership are the same.
    pub(crate) fn groups_of(&self, user: Uuid) -> Vec<Group> {
        let ids = self.members.get(&user).map(Vec::as_slice).unwrap_or_default();
        self.groups.iter().filter(|group| ids.contains(&group.id)).cloned().collect()
    }

    pub(crate) fn set_groups(&mut self, user: Uuid, ids: &[Uuid]) -> Result<(), UnknownGroup> {
        if let Some(unknown) = ids.iter().find(|id| !self.groups.iter().any(|group| group.id == **id)) {
            return Err(UnknownGroup(*unknown));
        }
        self.members.insert(user, ids.to_vec());
        Ok(())
    }

    /// Adds a group (or renames one with the same id).
    pub(crate) fn put_group(&mut self, group: Group) {
        match self.groups.iter_mut().find(|known| known.id == group.id) {
            Some(known) => *known = group,
            None => self.groups.push(group),
        }
    }

    pub(crate) fn app_roles_of(&self, user: Uuid) -> Vec<String> {
        self.app_roles.get(&user).cloned().unwrap_or_default()
    }

    pub(crate) fn set_app_roles(&mut self, user: Uuid, roles: Vec<String>) {
        self.app_roles.insert(user, roles);
    }
}

/// `roles`, `wids` and `groups` (or the overage claim) of `user` in `client`'s tokens: its ID
/// tokens, and the access tokens for the API it exposes (an API's registration decides what its
/// tokens carry, as in Entra).
pub(crate) fn authorization_claims(
    memberships: &Memberships,
    client: &ClientRegistration,
    user: &DirectoryUser,
    tenant: Uuid,
    overage_limit: usize,
) -> Map<String, Value> {
    let mut claims = Map::new();
    // Only roles the app registration defines reach its tokens.
    let roles: Vec<String> =
        memberships.app_roles_of(user.oid).into_iter().filter(|role| client.app_roles.contains(role)).collect();
    if !roles.is_empty() {
        claims.insert("roles".into(), json!(roles));
    }
    if !user.user.directory_roles.is_empty() {
        claims.insert("wids".into(), json!(user.user.directory_roles));
    }
    let groups: Vec<Uuid> = match client.group_membership_claims {
        GroupMembershipClaims::None => return claims,
        GroupMembershipClaims::SecurityGroup => {
            memberships.groups_of(user.oid).into_iter().filter(|group| group.security_enabled).map(|g| g.id).collect()
        }
        GroupMembershipClaims::All => memberships.groups_of(user.oid).into_iter().map(|group| group.id).collect(),
    };
    if groups.len() > overage_limit {
        // Entra's shape: a pointer to the (legacy) endpoint instead of the list; clients must ask
        // Microsoft Graph instead of that endpoint.
        claims.insert("_claim_names".into(), json!({ "groups": "src1" }));
        claims.insert(
            "_claim_sources".into(),
            json!({ "src1": { "endpoint": format!("https://graph.windows.net/{tenant}/users/{}/getMemberObjects", user.oid) } }),
        );
    } else if !groups.is_empty() {
        claims.insert("groups".into(), json!(groups));
    }
    claims
}

/// The object id of an application's service principal here (an app-only token's `oid` and
/// `sub`): derived from its client id, so the same in every run.
pub(crate) fn service_principal_id(client_id: &str) -> Uuid {
    let digest = <sha2::Sha256 as sha2::Digest>::digest(format!("service-principal:{client_id}").as_bytes());
    let mut bytes = [0u8; 16];
    bytes.copy_from_slice(&digest[..16]);
    uuid::Builder::from_random_bytes(bytes).into_uuid()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn user(groups: Vec<Uuid>) -> DirectoryUser {
        let user =
            User { groups, app_roles: vec!["Reader".into(), "Unknown".into()], ..User::new("u@x.test", "p", "U") };
        DirectoryUser { oid: user.object_id(), tenant_id: Uuid::nil(), user, photo: None }
    }

    fn group(n: u128, security_enabled: bool) -> Group {
        Group { id: Uuid::from_u128(n), display_name: format!("g{n}"), security_enabled }
    }

    #[test]
    fn groups_above_the_limit_become_the_overage_claim() {
        let groups: Vec<Group> = (1..=4).map(|n| group(n, true)).collect();
        let member = user(groups.iter().map(|g| g.id).collect());
        let memberships = Memberships::new(groups, std::slice::from_ref(&member)).unwrap();
        let client = ClientRegistration::default();
        let within = authorization_claims(&memberships, &client, &member, Uuid::nil(), 4);
        assert_eq!(within["groups"].as_array().map(Vec::len), Some(4));
        assert!(!within.contains_key("_claim_names"));
        let over = authorization_claims(&memberships, &client, &member, Uuid::nil(), 3);
        assert!(!over.contains_key("groups"));
        assert_eq!(over["_claim_names"], json!({ "groups": "src1" }));
        assert!(over["_claim_sources"]["src1"]["endpoint"].as_str().unwrap().ends_with("/getMemberObjects"));
        assert_eq!(over["roles"], json!(["Reader"]), "only roles the registration defines");
    }

    #[test]
    fn security_group_claims_leave_out_other_groups_and_none_leaves_out_all() {
        let groups = vec![group(1, true), group(2, false)];
        let member = user(vec![Uuid::from_u128(1), Uuid::from_u128(2)]);
        let memberships = Memberships::new(groups, std::slice::from_ref(&member)).unwrap();
        let mut client = ClientRegistration::default();
        let claims = authorization_claims(&memberships, &client, &member, Uuid::nil(), 200);
        assert_eq!(claims["groups"], json!([Uuid::from_u128(1)]));
        client.group_membership_claims = GroupMembershipClaims::All;
        let claims = authorization_claims(&memberships, &client, &member, Uuid::nil(), 200);
        assert_eq!(claims["groups"].as_array().map(Vec::len), Some(2));
        client.group_membership_claims = GroupMembershipClaims::None;
        assert!(!authorization_claims(&memberships, &client, &member, Uuid::nil(), 200).contains_key("groups"));
    }

    #[test]
    fn an_unknown_group_is_refused() {
        let member = user(vec![Uuid::from_u128(9)]);
        assert!(Memberships::new(vec![group(1, true)], std::slice::from_ref(&member)).is_err());
    }
}
