//! The reconcile loop of `ecs-reconciler run`: which resources are due
//! ([`scheduler`]), the desired-state file read (by every command) and kept
//! live ([`reload`]), every
//! outside trigger as one enum ([`control`]), the loop that observes once
//! per pass and applies per resource ([`controller`]) through the gate of
//! `ecs_reconciler_plan`, what it publishes ([`status`], [`report`],
//! [`metrics`], [`timeline`]), the audit trail ([`audit`]) and this copy's
//! identity for leader election ([`metadata`]). The cloud is a trait
//! ([`cloud::Cloud`]) so all of this is tested without AWS.

pub mod audit;
pub mod cloud;
pub mod control;
pub mod controller;
pub mod events;
pub mod fights;
pub mod holds;
pub mod http;
pub mod memory;
pub mod metadata;
pub mod metrics;
pub mod notify;
pub mod reload;
pub mod report;
pub mod requests;
pub mod scheduler;
pub mod scope;
pub mod status;
pub mod timeline;
pub mod units;
