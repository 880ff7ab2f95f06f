//! The cloud as the loop sees it: read what the config names, execute
//! changes, say whether this copy leads. The binary implements it over the
//! AWS SDK; tests fake it, so the loop is tested without AWS.

use std::future::Future;

use ecs_reconciler_plan::{ActionOutcome, Change, Snapshot};
use ecs_reconciler_spec::DesiredState;
use serde::Serialize;
use tokio_util::sync::CancellationToken;

use crate::metrics::BudgetHeadroom;
use crate::scope::Coverage;

/// Reads and writes AWS for the loop.
pub trait Cloud: Send + Sync + 'static {
    /// Reads what `desired` names. A [`Coverage::Scoped`] read is of part
    /// of the file: what the cloud remembers across passes about the rest
    /// must be kept, not dropped.
    fn observe(
        &self,
        desired: &DesiredState,
        coverage: Coverage,
    ) -> impl Future<Output = Snapshot> + Send;

    /// Executes in order; starts no new call once `stop` is cancelled.
    fn execute(
        &self,
        changes: Vec<Change>,
        stop: CancellationToken,
    ) -> impl Future<Output = Vec<ActionOutcome>> + Send;

    /// The client-side API budgets' state (none by default).
    fn budgets(&self) -> Vec<BudgetHeadroom> {
        Vec::new()
    }

    /// Whether this copy may write. A single copy always leads.
    fn leadership(&self) -> impl Future<Output = Leadership> + Send {
        async { Leadership::Leader }
    }
}

/// This copy's role. Only the leader writes; followers observe and report.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Default)]
#[serde(tag = "role", rename_all = "kebab-case")]
pub enum Leadership {
    /// This copy writes.
    #[default]
    Leader,
    /// Another copy writes.
    Follower {
        /// The leading task's ARN, when there is one.
        leader: Option<String>,
    },
    /// The election could not be read: not writing is the safe side.
    Unknown {
        /// Why it could not be read.
        reason: String,
    },
}
