//! One control channel: every outside trigger of the daemon — a signal, a
//! request on the control API, a batch from the events queue — becomes a
//! [`Control`] sent on one channel. The binary decides which signal means
//! what (one table, in one file); the runtime decides what each control
//! does (here). A test sends controls without signalling its own process.
//!
//! Shutdown is acted on at once, even in the middle of a pass (the pass
//! starts no new AWS call once the token is cancelled); a second shutdown
//! cuts the graceful stop short. The other controls reach the loop, which
//! acts on them between passes.

use std::sync::{Arc, Mutex};

use ecs_reconciler_plan::UnitId;
use ecs_reconciler_plan::events::QueueHealth;
use serde::Serialize;

use crate::events::EventBatch;
use crate::status::UnitState;
use tokio::sync::{Notify, mpsc, oneshot};
use tokio_util::sync::CancellationToken;

/// An outside trigger.
#[derive(Debug, Clone, PartialEq)]
pub enum Control {
    /// Stop: the pass in flight finishes its calls, no new one starts. A
    /// second one means "now".
    Shutdown,
    /// Re-read and re-validate the file now, forget fights, and re-check
    /// every resource.
    Reload,
    /// Re-check every resource now.
    ResyncAll,
    /// An operator confirms every held removal: apply them now.
    ConfirmHeld(Origin),
    /// Reconcile some resources (all when empty) at once, bypassing their
    /// resync; the reply, when asked for, carries the pass's result.
    ReconcileNow(ReconcileRequest),
    /// Change events from the queue: the resources they concern are
    /// re-read now; the ack is sent once their passes are scheduled (the
    /// consumer then deletes the messages).
    Events(EventBatch, Ack),
    /// The events queue became readable, or stopped being so.
    EventQueue(QueueHealth),
}

/// Who sent a control, for the log, the audit trail and the timeline.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case", tag = "via")]
pub enum Origin {
    /// A Unix signal, by name.
    Signal {
        /// `SIGUSR1`, ...
        name: &'static str,
    },
    /// The authenticated control API.
    Api {
        /// The client's address.
        peer: String,
    },
}

impl std::fmt::Display for Origin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Origin::Signal { name } => write!(f, "{name}"),
            Origin::Api { peer } => write!(f, "the control API (from {peer})"),
        }
    }
}

/// A reconcile-now request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReconcileRequest {
    /// The resources; empty means every declared one.
    pub units: Vec<UnitId>,
    /// Who asked.
    pub origin: Origin,
    /// Where the result goes once every named resource has had its pass.
    pub reply: Option<PassReply>,
}

/// The result of the passes a reconcile-now request caused, per resource.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PassSummary {
    /// Every resource converged: nothing left to change, nothing failed.
    pub converged: bool,
    /// Resources whose pass failed (a read or a change).
    pub errors: usize,
    /// Per resource.
    pub units: Vec<UnitSummary>,
}

/// One resource's state after the requested pass.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct UnitSummary {
    /// The resource.
    pub unit: UnitId,
    /// Its state (`in-sync`, `correcting`, `drifted`, `error`, ...);
    /// `None` when it is no longer declared.
    pub state: Option<UnitState>,
    /// Changes left: drift not corrected (reported, held, observe mode)
    /// plus corrections that failed or were skipped.
    pub remaining: usize,
    /// The error of its pass, if any.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// The sending half of a one-time answer, shareable so [`Control`] stays
/// `Clone`; equal only to itself.
#[derive(Debug, Clone)]
pub struct PassReply(Arc<Mutex<Option<oneshot::Sender<PassSummary>>>>);

impl PassReply {
    /// A reply and the receiver its answer arrives on.
    pub fn new() -> (PassReply, oneshot::Receiver<PassSummary>) {
        let (tx, rx) = oneshot::channel();
        (PassReply(Arc::new(Mutex::new(Some(tx)))), rx)
    }

    /// Sends the answer (the first one only; a gone receiver is fine).
    pub fn send(&self, summary: PassSummary) {
        if let Some(tx) = self.0.lock().ok().and_then(|mut tx| tx.take()) {
            let _ = tx.send(summary);
        }
    }
}

impl PartialEq for PassReply {
    fn eq(&self, other: &Self) -> bool {
        Arc::ptr_eq(&self.0, &other.0)
    }
}

impl Eq for PassReply {}

/// A one-time "done" signal, shareable so [`Control`] stays `Clone`;
/// equal only to itself.
#[derive(Debug, Clone)]
pub struct Ack(Arc<Mutex<Option<oneshot::Sender<()>>>>);

impl Ack {
    /// An ack and the receiver it arrives on.
    pub fn new() -> (Ack, oneshot::Receiver<()>) {
        let (tx, rx) = oneshot::channel();
        (Ack(Arc::new(Mutex::new(Some(tx)))), rx)
    }

    /// Signals (the first time only; a gone receiver is fine).
    pub fn send(&self) {
        if let Some(tx) = self.0.lock().ok().and_then(|mut tx| tx.take()) {
            let _ = tx.send(());
        }
    }
}

impl PartialEq for Ack {
    fn eq(&self, other: &Self) -> bool {
        Arc::ptr_eq(&self.0, &other.0)
    }
}

impl Eq for Ack {}

/// Sends controls to a running daemon; cheap to clone.
#[derive(Debug, Clone)]
pub struct ControlSender(mpsc::UnboundedSender<Control>);

impl ControlSender {
    /// Sends `control`; false once the daemon has stopped listening.
    pub fn send(&self, control: Control) -> bool {
        self.0.send(control).is_ok()
    }
}

/// The receiving end, before it is routed (see [`ControlReceiver::route`]).
#[derive(Debug)]
pub struct ControlReceiver(mpsc::UnboundedReceiver<Control>);

/// A new control channel.
pub fn channel() -> (ControlSender, ControlReceiver) {
    let (tx, rx) = mpsc::unbounded_channel();
    (ControlSender(tx), ControlReceiver(rx))
}

/// Where the router sends what it does not handle itself.
#[derive(Debug, Clone)]
pub struct Routes {
    /// Cancelled by the first [`Control::Shutdown`].
    pub shutdown: CancellationToken,
    /// Cancelled by the second one: stop waiting for the pass in flight.
    pub abort: CancellationToken,
    /// Notified on [`Control::Reload`]: the config reloader re-reads the
    /// file (see `reload::spawn_watcher`).
    pub reload_file: Arc<Notify>,
}

/// The controls the reconcile loop acts on between passes.
#[derive(Debug)]
pub struct LoopControls(mpsc::UnboundedReceiver<Control>);

impl LoopControls {
    /// The next control; pending forever once every sender is gone.
    pub async fn recv(&mut self) -> Control {
        match self.0.recv().await {
            Some(control) => control,
            None => std::future::pending().await,
        }
    }
}

impl ControlReceiver {
    /// Starts routing: shutdowns cancel `routes.shutdown` (then
    /// `routes.abort`) at once; a reload also wakes the file reloader; every
    /// control but shutdown then reaches the loop through the returned
    /// receiver. Spawns a task that ends with the channel.
    pub fn route(mut self, routes: Routes) -> LoopControls {
        let (to_loop, loop_rx) = mpsc::unbounded_channel();
        tokio::spawn(async move {
            while let Some(control) = self.0.recv().await {
                match control {
                    Control::Shutdown if routes.shutdown.is_cancelled() => routes.abort.cancel(),
                    Control::Shutdown => routes.shutdown.cancel(),
                    Control::Reload => {
                        routes.reload_file.notify_one();
                        let _ = to_loop.send(control);
                    }
                    Control::ResyncAll
                    | Control::ConfirmHeld(_)
                    | Control::ReconcileNow(_)
                    | Control::Events(..)
                    | Control::EventQueue(_) => {
                        let _ = to_loop.send(control);
                    }
                }
            }
        });
        LoopControls(loop_rx)
    }

    /// The loop's controls without routing, for tests that drive a loop
    /// alone: every control reaches the loop as sent (shutdown included,
    /// which the loop ignores: it stops on its token).
    pub fn unrouted(self) -> LoopControls {
        LoopControls(self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn shutdown_cancels_at_once_and_a_second_one_aborts() {
        let (tx, rx) = channel();
        let routes = Routes {
            shutdown: CancellationToken::new(),
            abort: CancellationToken::new(),
            reload_file: Arc::new(Notify::new()),
        };
        let mut to_loop = rx.route(routes.clone());
        let confirm = Control::ConfirmHeld(Origin::Signal { name: "SIGUSR1" });
        assert!(tx.send(confirm.clone()));
        assert_eq!(to_loop.recv().await, confirm);
        tx.send(Control::Shutdown);
        routes.shutdown.cancelled().await;
        assert!(!routes.abort.is_cancelled());
        tx.send(Control::Shutdown);
        routes.abort.cancelled().await;
    }

    #[tokio::test]
    async fn reload_wakes_the_reloader_and_reaches_the_loop() {
        let (tx, rx) = channel();
        let reload_file = Arc::new(Notify::new());
        let mut to_loop = rx.route(Routes {
            shutdown: CancellationToken::new(),
            abort: CancellationToken::new(),
            reload_file: reload_file.clone(),
        });
        tx.send(Control::Reload);
        reload_file.notified().await;
        assert_eq!(to_loop.recv().await, Control::Reload);
        tx.send(Control::ResyncAll);
        assert_eq!(to_loop.recv().await, Control::ResyncAll);
    }
}
