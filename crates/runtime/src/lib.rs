//! The reconcile loop of `ecs-reconciler run`: which resources are due
//! ([`scheduler`]), the desired-state file read (by every command) and kept
//! live ([`reload`]), the loop that observes once per pass and applies per
//! resource ([`controller`]), the audit trail ([`audit`]) and this copy's
//! identity for leader election ([`metadata`]). The cloud is a trait
//! ([`controller::Cloud`]) so all of this is tested without AWS.

pub mod audit;
pub mod controller;
pub mod fights;
pub mod holds;
pub mod http;
pub mod memory;
pub mod metadata;
pub mod metrics;
pub mod reload;
pub mod scheduler;
pub mod scope;
pub mod timeline;
