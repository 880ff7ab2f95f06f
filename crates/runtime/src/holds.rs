//! Drastic config edits awaiting an operator's confirmation.
//!
//! A reload that cuts a resource's declared members beyond the destructive
//! cap (see `ecs_reconciler_plan::drastic`) holds that resource's removals
//! until SIGUSR1 confirms them. Each hold keeps the config it was judged
//! against, so a later edit that restores the members lifts it, and a
//! further cut does not reset it. Additive changes are never held.

use std::collections::BTreeMap;
use std::sync::Arc;

use ecs_reconciler_plan::{DrasticChange, UnitId, drastic_changes};
use ecs_reconciler_spec::DesiredState;
use serde::Serialize;

/// A drastic edit held for confirmation, as the status API shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct AwaitingConfirmation {
    /// The resource the edit cut.
    pub owner: UnitId,
    /// What the edit did.
    pub what: String,
    /// The config generation that made the edit.
    pub generation: u64,
}

struct Hold {
    /// The config before the edit: later edits are judged against it.
    baseline: Arc<DesiredState>,
    change: DrasticChange,
    generation: u64,
}

/// The holds, by `Change::owner`.
#[derive(Default)]
pub struct DrasticHolds {
    holds: BTreeMap<UnitId, Hold>,
}

impl DrasticHolds {
    /// Judges the edit `before` → `after` (accepted as `generation`):
    /// returns the resources newly held.
    pub fn on_reload(
        &mut self,
        before: &Arc<DesiredState>,
        after: &DesiredState,
        generation: u64,
    ) -> Vec<DrasticChange> {
        // Existing holds: still drastic against their own baseline?
        self.holds.retain(|owner, hold| {
            match drastic_changes(&hold.baseline, after)
                .into_iter()
                .find(|d| &d.owner == owner)
            {
                Some(change) => {
                    hold.change = change;
                    true
                }
                None => false,
            }
        });
        let mut new = Vec::new();
        for change in drastic_changes(before, after) {
            if self.holds.contains_key(&change.owner) {
                continue;
            }
            new.push(change.clone());
            self.holds.insert(
                change.owner.clone(),
                Hold {
                    baseline: before.clone(),
                    change,
                    generation,
                },
            );
        }
        new
    }

    /// The operator confirmed: every hold is lifted. Returns how many.
    pub fn confirm_all(&mut self) -> usize {
        let n = self.holds.len();
        self.holds.clear();
        n
    }

    /// Drops the holds of `settled` resources: nothing is left to hold
    /// (the removals were made some other way, e.g. `apply
    /// --allow-destructive`, or the live state already matches; the gate
    /// decides, after a complete observation).
    pub fn settle(&mut self, settled: &[UnitId]) {
        for owner in settled {
            self.holds.remove(owner);
        }
    }

    /// The held edits, for the gate.
    pub fn changes(&self) -> Vec<DrasticChange> {
        self.holds.values().map(|h| h.change.clone()).collect()
    }

    /// The held edits, for the status API.
    pub fn awaiting(&self) -> Vec<AwaitingConfirmation> {
        self.holds
            .values()
            .map(|h| AwaitingConfirmation {
                owner: h.change.owner.clone(),
                what: h.change.what.clone(),
                generation: h.generation,
            })
            .collect()
    }

    /// Whether nothing is held.
    pub fn is_empty(&self) -> bool {
        self.holds.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn seed() -> Arc<DesiredState> {
        Arc::new(
            ecs_reconciler_spec::load(include_str!("../../../examples/seed.yaml"))
                .expect("seed is valid"),
        )
    }

    #[test]
    fn a_hold_lasts_until_confirmed_or_undone_by_a_later_edit() {
        let seed = seed();
        let mut emptied = (*seed).clone();
        emptied.security_groups[0].ingress.clear();
        let emptied = Arc::new(emptied);
        let mut holds = DrasticHolds::default();
        let new = holds.on_reload(&seed, &emptied, 2);
        assert_eq!(new.len(), 1);
        assert_eq!(
            holds.awaiting()[0].owner,
            UnitId::security_group("LoadBalancerGroup")
        );

        // An unrelated edit keeps the hold (judged against the seed).
        let mut unrelated = (*emptied).clone();
        unrelated.services[0].replicas.min = 3;
        unrelated.services[0].replicas.max = 3;
        let unrelated = Arc::new(unrelated);
        assert!(holds.on_reload(&emptied, &unrelated, 3).is_empty());
        assert_eq!(holds.awaiting().len(), 1);
        assert_eq!(holds.awaiting()[0].generation, 2);

        // Restoring the rule lifts it.
        assert!(holds.on_reload(&unrelated, &seed, 4).is_empty());
        assert!(holds.is_empty());

        // Confirming lifts every hold.
        holds.on_reload(&seed, &emptied, 5);
        assert_eq!(holds.confirm_all(), 1);
        assert!(holds.changes().is_empty());

        // Nothing pending for an owner: the hold goes.
        holds.on_reload(&seed, &emptied, 6);
        holds.settle(&[UnitId::security_group("LoadBalancerGroup")]);
        assert!(holds.is_empty());
    }
}
