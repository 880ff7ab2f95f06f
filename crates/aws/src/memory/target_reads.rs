//! Target health across passes: which target groups a pass re-reads, and
//! which reuse their previous read.
//!
//! DescribeTargetHealth takes one target group per call, and ELBv2's
//! Describe* bucket (10 per second for the whole account) is the narrowest
//! one the controller draws on, so re-reading every group every pass makes a
//! pass over 1,000 groups last minutes. Most of those reads cannot show
//! anything new: a group is *quiet* when its last read showed exactly the
//! targets its service's running tasks give, all `healthy`, and the file's
//! entry for it is unchanged since. A group that is not quiet is re-read
//! every pass — never read, read as unknown, re-pointed (new ARN), edited,
//! acted on, with targets still settling (initial, draining, unhealthy), or
//! whose tasks no longer match its last read.
//!
//! Quiet groups are re-read in rotation, the stalest first, `rotation` of
//! them per pass, so none goes unread for more than ⌈quiet / rotation⌉
//! passes. That is the bound on how long a change ECS does not reflect
//! (someone deregistered a healthy target, or registered a foreign one) can
//! hide. `rotation = 0` turns reuse off: every group is read every pass.
//!
//! A reused read never leads to a deregistration: the snapshot carries its
//! age and the plan only deregisters on a read made in the same pass.

use std::collections::HashMap;
use std::sync::Mutex;

use ecs_reconciler_plan::LiveTarget;

/// Cross-pass memory of target-health reads, shared by a daemon's passes.
#[derive(Debug, Default)]
pub struct TargetReads {
    /// Quiet groups re-read per pass; 0 = every group every pass.
    rotation: usize,
    state: Mutex<State>,
}

#[derive(Debug, Default)]
struct State {
    /// Passes begun so far.
    pass: u64,
    groups: HashMap<String, Entry>,
}

#[derive(Debug, Clone)]
struct Entry {
    arn: String,
    /// The file's entry for the group when it was read.
    fingerprint: String,
    targets: Vec<LiveTarget>,
    read_at: u64,
    /// Set after the pass that read or reused it, when nothing about the
    /// group is in motion; cleared by any action on it.
    quiet: bool,
}

/// A declared group that was found, as this pass knows it.
#[derive(Debug, Clone, PartialEq)]
pub struct Candidate {
    /// The group's name, as declared in the file.
    pub name: String,
    /// The ARN found for that name this pass.
    pub arn: String,
    /// The file's entry for the group (its `Debug` text); a different one
    /// means the entry was edited.
    pub fingerprint: String,
}

/// What a pass does for one group.
#[derive(Debug, Clone, PartialEq)]
pub enum Decision {
    /// Call DescribeTargetHealth for it this pass.
    Read,
    /// Reuse targets read this many passes ago (≥ 1).
    Reuse {
        /// The targets as that read found them.
        targets: Vec<LiveTarget>,
        /// Passes since that read, at least 1.
        passes_ago: u64,
    },
}

impl TargetReads {
    /// Empty memory re-reading `rotation` quiet groups per pass (0 = every
    /// group every pass).
    pub fn new(rotation: usize) -> TargetReads {
        TargetReads {
            rotation,
            state: Mutex::default(),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Starts a pass and decides, for each found group, read or reuse.
    /// When the pass covers the whole file (`full`), groups not among
    /// `candidates` (gone from the file, or not found) are forgotten; a
    /// pass over part of the file (an edit, a retry) forgets nothing.
    pub fn plan_pass(&self, candidates: &[Candidate], full: bool) -> HashMap<String, Decision> {
        let mut state = self.lock();
        state.pass += 1;
        let pass = state.pass;
        if full {
            state
                .groups
                .retain(|name, _| candidates.iter().any(|c| &c.name == name));
        }
        let slots = if self.rotation == 0 {
            usize::MAX
        } else {
            self.rotation
        };
        decide(pass, slots, &state.groups, candidates)
    }

    /// Remembers a read made this pass (not yet known to be quiet).
    pub fn record_read(&self, candidate: &Candidate, targets: &[LiveTarget]) {
        let mut state = self.lock();
        let read_at = state.pass;
        state.groups.insert(
            candidate.name.clone(),
            Entry {
                arn: candidate.arn.clone(),
                fingerprint: candidate.fingerprint.clone(),
                targets: targets.to_vec(),
                read_at,
                quiet: false,
            },
        );
    }

    /// A read that failed: nothing to reuse.
    pub fn forget(&self, name: &str) {
        self.lock().groups.remove(name);
    }

    /// After the pass's snapshot is complete: whether the group's targets
    /// (read or reused) are exactly what its tasks give, all healthy.
    pub fn set_quiet(&self, name: &str, quiet: bool) {
        if let Some(entry) = self.lock().groups.get_mut(name) {
            entry.quiet = quiet;
        }
    }

    /// The controller changed something in the group (or tried to): its
    /// next pass re-reads it.
    pub fn touched(&self, name: &str) {
        self.set_quiet(name, false);
    }
}

/// The pure choice: every group that is not quiet is read; of the quiet
/// ones, the `slots` read longest ago (ties by name) are read too.
fn decide(
    pass: u64,
    slots: usize,
    groups: &HashMap<String, Entry>,
    candidates: &[Candidate],
) -> HashMap<String, Decision> {
    let mut out = HashMap::new();
    let mut quiet: Vec<(&Candidate, &Entry)> = Vec::new();
    for candidate in candidates {
        match groups.get(&candidate.name) {
            Some(entry)
                if entry.quiet
                    && entry.arn == candidate.arn
                    && entry.fingerprint == candidate.fingerprint =>
            {
                quiet.push((candidate, entry));
            }
            _ => {
                out.insert(candidate.name.clone(), Decision::Read);
            }
        }
    }
    quiet.sort_by(|a, b| (a.1.read_at, &a.0.name).cmp(&(b.1.read_at, &b.0.name)));
    for (i, (candidate, entry)) in quiet.into_iter().enumerate() {
        let decision = if i < slots {
            Decision::Read
        } else {
            Decision::Reuse {
                targets: entry.targets.clone(),
                passes_ago: pass.saturating_sub(entry.read_at).max(1),
            }
        };
        out.insert(candidate.name.clone(), decision);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use ecs_reconciler_plan::TargetKey;

    fn candidate(name: &str) -> Candidate {
        Candidate {
            name: name.into(),
            arn: format!("arn:{name}"),
            fingerprint: "spec".into(),
        }
    }

    fn healthy(id: &str) -> Vec<LiveTarget> {
        vec![LiveTarget {
            key: TargetKey {
                id: id.into(),
                port: 32768,
            },
            state: "healthy".into(),
        }]
    }

    fn reads(decisions: &HashMap<String, Decision>) -> Vec<String> {
        let mut out: Vec<String> = decisions
            .iter()
            .filter(|(_, d)| **d == Decision::Read)
            .map(|(n, _)| n.clone())
            .collect();
        out.sort();
        out
    }

    /// Runs passes where every read group turns out quiet; returns the
    /// groups read in each pass.
    fn quiet_passes(
        reads_state: &TargetReads,
        all: &[Candidate],
        passes: usize,
    ) -> Vec<Vec<String>> {
        (0..passes)
            .map(|_| {
                let decisions = reads_state.plan_pass(all, true);
                for c in all {
                    if decisions[&c.name] == Decision::Read {
                        reads_state.record_read(c, &healthy(&c.name));
                    }
                    reads_state.set_quiet(&c.name, true);
                }
                reads(&decisions)
            })
            .collect()
    }

    #[test]
    fn the_first_pass_reads_everything() {
        let state = TargetReads::new(1);
        let all: Vec<_> = ["a", "b", "c"].map(candidate).to_vec();
        assert_eq!(reads(&state.plan_pass(&all, true)), ["a", "b", "c"]);
    }

    #[test]
    fn quiet_groups_rotate_stalest_first_within_the_bound() {
        let state = TargetReads::new(2);
        let all: Vec<_> = ["a", "b", "c", "d", "e"].map(candidate).to_vec();
        let passes = quiet_passes(&state, &all, 7);
        assert_eq!(passes[0], ["a", "b", "c", "d", "e"]);
        assert_eq!(passes[1], ["a", "b"]);
        assert_eq!(passes[2], ["c", "d"]);
        assert_eq!(passes[3], ["a", "e"]);
        // Each group is read at least once in every ⌈5 / 2⌉ = 3 passes.
        for window in passes[1..].windows(3) {
            for c in &all {
                assert!(
                    window.iter().any(|p| p.contains(&c.name)),
                    "{} unread in {window:?}",
                    c.name
                );
            }
        }
    }

    #[test]
    fn groups_not_quiet_are_read_every_pass() {
        let state = TargetReads::new(1);
        let all: Vec<_> = ["a", "b", "c"].map(candidate).to_vec();
        quiet_passes(&state, &all, 1);
        state.set_quiet("c", false);
        assert_eq!(reads(&state.plan_pass(&all, true)), ["a", "c"]);
    }

    #[test]
    fn acting_on_a_group_makes_the_next_pass_read_it() {
        let state = TargetReads::new(1);
        let all: Vec<_> = ["a", "b", "c"].map(candidate).to_vec();
        quiet_passes(&state, &all, 2);
        state.touched("c");
        let decisions = state.plan_pass(&all, true);
        assert_eq!(reads(&decisions), ["b", "c"]);
        assert_eq!(
            decisions["a"],
            Decision::Reuse {
                targets: healthy("a"),
                passes_ago: 1
            }
        );
    }

    #[test]
    fn a_new_arn_or_an_edited_entry_is_read_again() {
        let state = TargetReads::new(1);
        let mut all: Vec<_> = ["a", "b", "c"].map(candidate).to_vec();
        quiet_passes(&state, &all, 1);
        all[1].arn = "arn:b-recreated".into();
        all[2].fingerprint = "edited".into();
        assert_eq!(reads(&state.plan_pass(&all, true)), ["a", "b", "c"]);
    }

    #[test]
    fn a_failed_read_leaves_nothing_to_reuse() {
        let state = TargetReads::new(1);
        let all: Vec<_> = ["a", "b"].map(candidate).to_vec();
        quiet_passes(&state, &all, 1);
        state.forget("b");
        assert_eq!(reads(&state.plan_pass(&all, true)), ["a", "b"]);
    }

    #[test]
    fn rotation_zero_reads_every_group_every_pass() {
        let state = TargetReads::new(0);
        let all: Vec<_> = ["a", "b", "c"].map(candidate).to_vec();
        for pass in quiet_passes(&state, &all, 3) {
            assert_eq!(pass, ["a", "b", "c"]);
        }
    }

    #[test]
    fn a_partial_pass_forgets_nothing() {
        let state = TargetReads::new(1);
        let all: Vec<_> = ["a", "b", "c"].map(candidate).to_vec();
        quiet_passes(&state, &all, 1);
        state.touched("b");
        assert_eq!(reads(&state.plan_pass(&all[..2], false)), ["a", "b"]);
        assert_eq!(state.lock().groups.len(), 3);
    }

    #[test]
    fn groups_gone_from_the_file_are_forgotten() {
        let state = TargetReads::new(5);
        let all: Vec<_> = ["a", "b"].map(candidate).to_vec();
        quiet_passes(&state, &all, 1);
        state.plan_pass(&all[..1], true);
        assert!(!state.lock().groups.contains_key("b"));
    }
}
