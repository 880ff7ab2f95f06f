//! The only crate that links the AWS SDKs. It turns live AWS into a
//! [`ecs_reconciler_plan::Snapshot`] ([`mod@observe`]) and executes
//! [`ecs_reconciler_plan::Action`]s ([`apply`]). Everything above it deals in
//! plain values.
//!
//! [`Aws`] is the handle every call takes: the stateless [`SdkClients`],
//! the API [`budget`], and the [`memory`] observation keeps between passes.
//! Observation ([`mod@observe`]) is split by service: `observe::{ecs, ec2, elbv2}`.

pub mod adopt;
pub mod apply;
mod attach;
pub mod budget;
pub mod clients;
pub mod error;
pub mod events;
pub mod leader;
pub mod memory;
pub mod observe;
mod pages;
mod service_events;
pub mod telemetry;
#[cfg(test)]
mod test_server;

pub use apply::execute;
pub use budget::{ApiBudget, ApiClass, BudgetOverride, BudgetSettings, BudgetState};
pub use clients::{Aws, ClientSettings, SdkClients};
pub use ecs_reconciler_plan::{ActionOutcome, Outcome};
pub use error::{AwsError, ErrorKind};
pub use memory::ObservationMemory;
pub use observe::observe;
pub use telemetry::{CallObserver, CallRecord};

/// Tag key put on every security-group rule ecs-reconciler creates;
/// `owned` groups revoke only rules that carry it (with [`OWNER_TAG_VALUE`]).
pub const OWNER_TAG_KEY: &str = "managed-by";
/// Value of the [`OWNER_TAG_KEY`] tag on the rules ecs-reconciler creates.
pub const OWNER_TAG_VALUE: &str = "ecs-reconciler";
