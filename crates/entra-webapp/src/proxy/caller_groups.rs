//! The groups of a caller whose access token has Entra's groups overage (a user in more groups
//! than a token carries gets none listed, only a pointer): asked of Microsoft Graph with the app's
//! own token (the `GroupMember.Read.All` application permission), since the proxy has no token of
//! that user's, and kept per user for [`KEPT_FOR`], so the access policy and the identity headers
//! see them as they do a session's. Two requests of one user arriving together may both ask.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use entra_auth::{EntraClient, UserGroupsError};
use uuid::Uuid;

/// How long a user's groups are kept: a membership change reaches the policy within this.
pub(crate) const KEPT_FOR: Duration = Duration::from_secs(300);
/// Users kept at most; when full, the cache starts over (only users with valid tokens get in).
const MAX_USERS: usize = 10_000;

type Kept = HashMap<(Uuid, Uuid), (Instant, Arc<[String]>)>;

/// Callers' groups, by tenant and object id.
#[derive(Default)]
pub(crate) struct CallerGroups(Mutex<Kept>);

impl CallerGroups {
    /// The groups of user `oid` of tenant `tid`: kept ones while fresh, else Graph's.
    pub(crate) async fn of(
        &self,
        client: &EntraClient,
        tid: Uuid,
        oid: Uuid,
    ) -> Result<Arc<[String]>, UserGroupsError> {
        if let Some(groups) = self.kept(tid, oid) {
            return Ok(groups);
        }
        let groups: Arc<[String]> = client.user_group_ids(oid).await?.into();
        self.keep(tid, oid, groups.clone());
        Ok(groups)
    }

    fn keep(&self, tid: Uuid, oid: Uuid, groups: Arc<[String]>) {
        let mut kept = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        if kept.len() >= MAX_USERS {
            kept.clear();
        }
        kept.insert((tid, oid), (Instant::now(), groups));
    }

    fn kept(&self, tid: Uuid, oid: Uuid) -> Option<Arc<[String]>> {
        let kept = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        let (since, groups) = kept.get(&(tid, oid))?;
        (since.elapsed() < KEPT_FOR).then(|| groups.clone())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_users_groups_are_kept_a_while_and_a_full_cache_starts_over() {
        let groups = CallerGroups::default();
        let (tid, adele, megan) = (Uuid::from_u128(1), Uuid::from_u128(2), Uuid::from_u128(3));
        groups.keep(tid, adele, vec!["sales".to_owned()].into());
        groups.keep(tid, megan, vec!["finance".to_owned()].into());
        assert_eq!(groups.kept(tid, adele).as_deref(), Some(&["sales".to_owned()][..]));
        assert_eq!(groups.kept(tid, megan).as_deref(), Some(&["finance".to_owned()][..]));
        assert!(groups.kept(Uuid::from_u128(9), adele).is_none(), "by tenant too");
        // One kept longer than KEPT_FOR is asked for again (on a machine up for that long).
        if let Some(long_ago) = Instant::now().checked_sub(KEPT_FOR) {
            groups.0.lock().unwrap().get_mut(&(tid, adele)).unwrap().0 = long_ago;
            assert!(groups.kept(tid, adele).is_none());
        }
        for n in 0..MAX_USERS as u128 {
            groups.keep(tid, Uuid::from_u128(100 + n), Arc::from([]));
        }
        assert!(groups.kept(tid, megan).is_none(), "full: started over");
        assert!(groups.0.lock().unwrap().len() < MAX_USERS);
    }
}
