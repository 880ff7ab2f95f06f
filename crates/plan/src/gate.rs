//! The gate: which of a plan's changes may run now, and why each of the
//! others may not. Pure policy, in one ordered place, shared by the daemon
//! and `apply --once`:
//!
//! 1. a scoped pass keeps only the due units' changes (it did not observe
//!    the rest well enough to judge them);
//! 2. removals held by the destructive cap are released when the previous
//!    complete observation held the very same change (two observations
//!    agree), or when an operator confirms;
//! 3. removals of a resource a drastic config edit cut stay held until an
//!    operator confirms (observing again cannot tell a typo from intent);
//! 4. of the rest, only due units' changes run, except fields another
//!    writer keeps undoing (fights), and nothing runs on a copy that does
//!    not lead.
//!
//! The state it needs across passes (the changes held last time) goes in
//! and comes out as values: the caller keeps it, the gate decides.

use std::collections::BTreeSet;

use crate::action::{Change, Disposition, HoldReason};
use crate::drastic::{DrasticChange, hold_drastic, takes_away};
use crate::plan::{Plan, change_key};
use crate::unit::UnitId;

/// What the gate decided for one change.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Runs now.
    Apply,
    /// Would run, but is held.
    Held(HoldReason),
    /// Its unit is not due this pass (it is planned only because a due
    /// unit reads it).
    NotDue,
    /// Drift that is only reported (observe mode, a person's job, info).
    ReportOnly,
}

/// A change held by the cap, as remembered between passes: its unit and
/// what it changes (see [`change_key`]).
pub type HeldKey = (UnitId, String);

/// Everything the gate judges by, besides the plan.
#[derive(Debug, Clone, Copy)]
pub struct GateInput<'a> {
    /// The units this pass may write.
    pub due: &'a BTreeSet<UnitId>,
    /// The observation covered only the due units and what they read.
    pub scoped: bool,
    /// The changes the cap held in the previous complete observation.
    pub held_before: &'a BTreeSet<HeldKey>,
    /// An operator confirmed every held removal.
    pub confirmed: bool,
    /// Drastic config edits still awaiting confirmation.
    pub drastic: &'a [DrasticChange],
    /// Fields being fought over (see [`Change::field`]).
    pub fighting: &'a BTreeSet<String>,
    /// Whether this copy may write.
    pub leader: bool,
}

/// Nothing held before, nothing fought over: a pass with no history.
static NO_HELD: BTreeSet<HeldKey> = BTreeSet::new();
static NO_FIGHTS: BTreeSet<String> = BTreeSet::new();

impl<'a> GateInput<'a> {
    /// A single full pass with no history, as `apply --once` runs: every
    /// unit in `due` may write, nothing was held or fought over before, no
    /// drastic edit is known, and this copy leads. `confirmed` is the
    /// operator's `--allow-destructive`.
    pub fn once(due: &'a BTreeSet<UnitId>, confirmed: bool) -> GateInput<'a> {
        GateInput {
            due,
            scoped: false,
            held_before: &NO_HELD,
            confirmed,
            drastic: &[],
            fighting: &NO_FIGHTS,
            leader: true,
        }
    }
}

/// The gate's decision.
#[derive(Debug, Clone, PartialEq)]
pub struct GateOutcome {
    /// One verdict per change of the (gated) plan, in the plan's order.
    pub verdicts: Vec<Verdict>,
    /// What the next pass's [`GateInput::held_before`] should be.
    pub held_before: BTreeSet<HeldKey>,
    /// Held changes released this pass (agreement or confirmation).
    pub released: usize,
    /// Drastic edits with nothing left to hold: their removals were made
    /// some other way, or the live state already matches.
    pub drastic_settled: Vec<UnitId>,
}

impl GateOutcome {
    /// The changes to execute now, in order.
    pub fn to_apply(&self, plan: &Plan) -> Vec<Change> {
        self.with(plan, |v| v == Verdict::Apply)
    }

    /// The changes held for `reason`, in order.
    pub fn held_for(&self, plan: &Plan, reason: HoldReason) -> Vec<Change> {
        self.with(plan, |v| v == Verdict::Held(reason))
    }

    fn with(&self, plan: &Plan, wanted: impl Fn(Verdict) -> bool) -> Vec<Change> {
        plan.changes
            .iter()
            .zip(&self.verdicts)
            .filter(|(_, verdict)| wanted(**verdict))
            .map(|(change, _)| change.clone())
            .collect()
    }
}

/// Decides what of `plan` runs now (see the module doc for the order).
/// Changes the plan's dispositions where a hold is released or added, so
/// what is reported matches what is done.
pub fn gate(plan: &mut Plan, input: &GateInput<'_>) -> GateOutcome {
    let in_scope = |owner: &UnitId| !input.scoped || input.due.contains(owner);
    if input.scoped {
        plan.changes.retain(|c| input.due.contains(&c.owner));
    }
    let complete = plan.unknowns.is_empty();
    let key = |c: &Change| (c.owner.clone(), change_key(c));

    let mut released = 0;
    let mut held_before: BTreeSet<HeldKey> = input
        .held_before
        .iter()
        .filter(|(owner, _)| !in_scope(owner))
        .cloned()
        .collect();
    // Only two consecutive complete observations agree.
    if complete {
        released += plan.release_held(|c| {
            c.hold == Some(HoldReason::DestructiveCap) && input.held_before.contains(&key(c))
        });
        held_before.extend(
            plan.changes
                .iter()
                .filter(|c| c.disposition == Disposition::Held)
                .map(key),
        );
    }
    if input.confirmed {
        released += plan.release_held(|c| c.hold.is_none_or(HoldReason::operator_may_release));
    }
    hold_drastic(plan, input.drastic);
    let drastic_settled = if complete {
        input
            .drastic
            .iter()
            .filter(|edit| in_scope(&edit.owner))
            .filter(|edit| {
                !plan.changes.iter().any(|c| {
                    c.owner == edit.owner && c.disposition == Disposition::Held && takes_away(c)
                })
            })
            .map(|edit| edit.owner.clone())
            .collect()
    } else {
        Vec::new()
    };

    let verdicts = plan
        .changes
        .iter()
        .map(|change| verdict(change, input))
        .collect();
    GateOutcome {
        verdicts,
        held_before,
        released,
        drastic_settled,
    }
}

fn verdict(change: &Change, input: &GateInput<'_>) -> Verdict {
    match change.disposition {
        Disposition::Held => Verdict::Held(change.hold.unwrap_or(HoldReason::DestructiveCap)),
        _ if change.hold == Some(HoldReason::Paused) => Verdict::Held(HoldReason::Paused),
        Disposition::Apply if !input.due.contains(&change.owner) => Verdict::NotDue,
        Disposition::Apply
            if change
                .field()
                .is_some_and(|field| input.fighting.contains(&field)) =>
        {
            Verdict::Held(HoldReason::Fight)
        }
        Disposition::Apply if !input.leader => Verdict::Held(HoldReason::NotLeader),
        Disposition::Apply => Verdict::Apply,
        Disposition::Observe | Disposition::Report | Disposition::Info => Verdict::ReportOnly,
    }
}
