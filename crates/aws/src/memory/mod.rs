//! What observation remembers from one pass to the next, and why each part
//! is safe to reuse. Nothing else in the crate keeps state across passes
//! (the API budget aside, which paces calls and remembers no answers).
//!
//! | remembered | why reusing it is safe |
//! |---|---|
//! | task definitions by revision ARN ([`TaskDefinitions`]) | a registered revision never changes: exact |
//! | running tasks, container instances by ARN ([`described`]) | only what never changes of them is kept, and only while a complete listing still shows them: exact |
//! | target-health reads ([`target_reads`]) | reused only for quiet groups, in rotation, and never grounds for a deregistration: bounded staleness |
//! | target groups in the account ([`TargetGroupsInAccount`]) | only chooses between listing and lookups by name; both give the same answer |

pub mod described;
pub mod target_reads;
mod task_definitions;

use std::sync::atomic::{AtomicUsize, Ordering};

use ecs_reconciler_plan::{LiveContainerInstance, LiveTask};

pub use described::Described;
pub use target_reads::TargetReads;
pub use task_definitions::TaskDefinitions;

/// Everything observation keeps between passes, shared by a daemon's
/// passes (and by the executor, which marks the target groups it touched).
#[derive(Debug)]
pub struct ObservationMemory {
    pub(crate) task_definitions: TaskDefinitions,
    /// Running tasks' descriptions, by cluster and ARN.
    pub(crate) tasks: Described<LiveTask>,
    /// Container instances' descriptions, by cluster and ARN.
    pub(crate) container_instances: Described<LiveContainerInstance>,
    pub(crate) target_reads: TargetReads,
    pub(crate) target_groups_in_account: TargetGroupsInAccount,
}

impl ObservationMemory {
    /// Empty memory; `target_health_rotation` is [`TargetReads::new`]'s
    /// rotation.
    pub fn new(target_health_rotation: usize) -> ObservationMemory {
        ObservationMemory {
            task_definitions: TaskDefinitions::default(),
            tasks: Described::default(),
            container_instances: Described::default(),
            target_reads: TargetReads::new(target_health_rotation),
            target_groups_in_account: TargetGroupsInAccount::default(),
        }
    }
}

/// How many target groups the account had at the last complete listing
/// (0 = never listed). It only decides whether the declared groups are
/// found by listing the account or by name, which find the same groups,
/// so a stale count costs calls, never correctness.
#[derive(Debug, Default)]
pub struct TargetGroupsInAccount(AtomicUsize);

impl TargetGroupsInAccount {
    /// The count of the last complete listing; 0 if there was none.
    pub fn last_listed(&self) -> usize {
        self.0.load(Ordering::Relaxed)
    }

    /// Records the count of a complete listing.
    pub fn set(&self, count: usize) {
        self.0.store(count, Ordering::Relaxed);
    }
}
