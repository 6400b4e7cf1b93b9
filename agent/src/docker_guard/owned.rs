//! The guard's memory of containers it knows to be its own, so that id-keyed calls on them
//! (inspect, exec create, pause, delete ...) need no ownership inspect of their own.
//!
//! Why remembering is safe:
//! - Only full ids (64 lowercase hex) are kept and only full ids are looked up: a name or a short
//!   id can be given to another container at any time, a full id cannot (ids are 256 random
//!   bits, never reused), and dockerd resolves an exact full id before it considers names.
//! - An id enters only from the guard's own create answer (the create body it judged carries the
//!   owner label) or from an inspect that [`super::policy::is_owned`] judged owned (not merely the
//!   caller's own container). Labels cannot change after create, so an id once owned stays owned
//!   for the life of that container.
//! - An id leaves when dockerd answers 404 for it, and when the guard forwards a delete of it.
//!   A container removed behind the guard's back stays remembered until then, which grants
//!   nothing: its id names no other container, so dockerd answers 404.
//! - The set is bounded ([`MAX_OWNED`]); past the bound the oldest entry is forgotten. Forgetting
//!   costs one ownership inspect on the next call, never a grant.
//!
//! `start` still inspects every time: it re-checks the bind sources for symlinks planted since
//! create, which needs the container's binds.

use std::collections::{HashSet, VecDeque};

/// Most container ids remembered; inserting past it forgets the oldest.
pub const MAX_OWNED: usize = 4096;

/// True for a full container id: exactly 64 lowercase hex digits, as dockerd writes ids.
pub fn is_full_id(s: &str) -> bool {
    s.len() == 64 && s.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

/// A bounded set of owned full container ids, oldest first out.
#[derive(Debug, Default)]
pub struct OwnedIds {
    ids: HashSet<String>,
    order: VecDeque<String>,
}

impl OwnedIds {
    /// Remembers `id` as owned. Anything but a full id is ignored (returns false).
    pub fn insert(&mut self, id: &str) -> bool {
        if !is_full_id(id) {
            return false;
        }
        if self.ids.insert(id.to_string()) {
            self.order.push_back(id.to_string());
            while self.order.len() > MAX_OWNED {
                if let Some(old) = self.order.pop_front() {
                    self.ids.remove(&old);
                }
            }
        }
        true
    }

    /// True when `id` is a full id remembered as owned.
    pub fn contains(&self, id: &str) -> bool {
        is_full_id(id) && self.ids.contains(id)
    }

    /// Forgets `id` (dockerd said 404, or the guard forwarded its delete).
    pub fn remove(&mut self, id: &str) {
        if self.ids.remove(id) {
            self.order.retain(|x| x != id);
        }
    }

    /// How many ids are remembered.
    pub fn len(&self) -> usize {
        self.ids.len()
    }

    /// True when nothing is remembered.
    pub fn is_empty(&self) -> bool {
        self.ids.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id(n: usize) -> String {
        format!("{n:064x}")
    }

    #[test]
    fn only_full_lowercase_ids_are_kept() {
        let mut s = OwnedIds::default();
        let full = "a".repeat(64);
        for bad in [
            "openclaw-sbx-a",
            &full[..12],
            &full[..63],
            &"a".repeat(65),
            &"A".repeat(64),
            &"g".repeat(64),
            "",
        ] {
            assert!(!s.insert(bad), "{bad:?} must not be kept");
            assert!(!s.contains(bad), "{bad:?}");
        }
        assert!(s.is_empty());
        assert!(s.insert(&full));
        assert!(s.contains(&full));
        // A prefix or the upper-case spelling of a kept id is not a hit.
        assert!(!s.contains(&full[..12]));
        assert!(!s.contains(&full.to_uppercase()));
    }

    #[test]
    fn being_the_callers_own_container_is_not_ownership() {
        // check_owner lets the caller reach its own container; that must not be remembered.
        let policy = crate::docker_guard::policy::Policy::default();
        let mine = id(7);
        let unlabelled = serde_json::json!({"Id": mine, "Config": {"Labels": {}}});
        let ok = crate::docker_guard::policy::check_owner(
            Some(&unlabelled),
            &mine,
            crate::docker_guard::policy::Who::OwnedOrSelf,
            true,
            Some(&mine),
            &policy,
        );
        assert_eq!(ok.as_deref(), Ok(mine.as_str()));
        assert!(!crate::docker_guard::policy::is_owned(&unlabelled, &policy));
        let labelled = serde_json::json!({"Id": mine, "Config": {"Labels": {
            crate::docker_guard::policy::OWNER_LABEL: policy.owner.clone()}}});
        assert!(crate::docker_guard::policy::is_owned(&labelled, &policy));
    }

    #[test]
    fn remove_forgets_and_the_bound_evicts_the_oldest() {
        let mut s = OwnedIds::default();
        for n in 0..MAX_OWNED {
            assert!(s.insert(&id(n)));
        }
        assert_eq!(s.len(), MAX_OWNED);
        // Inserting a known id again changes nothing.
        assert!(s.insert(&id(0)));
        assert_eq!(s.len(), MAX_OWNED);
        s.insert(&id(MAX_OWNED));
        assert_eq!(s.len(), MAX_OWNED);
        assert!(!s.contains(&id(0)), "the oldest is forgotten at the bound");
        assert!(s.contains(&id(1)) && s.contains(&id(MAX_OWNED)));
        s.remove(&id(5));
        assert!(!s.contains(&id(5)));
        assert_eq!(s.len(), MAX_OWNED - 1);
        // The order list shrank with the set: the next evictions are 1, 2, ... and never go
        // below the bound.
        s.insert(&id(MAX_OWNED + 1));
        s.insert(&id(MAX_OWNED + 2));
        assert_eq!(s.len(), MAX_OWNED);
        assert!(!s.contains(&id(1)));
        assert!(s.contains(&id(2)));
    }
}
