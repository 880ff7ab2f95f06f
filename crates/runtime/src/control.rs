//! One control channel: every outside trigger of the daemon — a signal
//! today, an event queue or a reconcile-now request tomorrow — becomes a
//! [`Control`] sent on one channel. The binary decides which signal means
//! what (one table, in one file); the runtime decides what each control
//! does (here). A test sends controls without signalling its own process.
//!
//! Shutdown is acted on at once, even in the middle of a pass (the pass
//! starts no new AWS call once the token is cancelled); a second shutdown
//! cuts the graceful stop short. The other controls reach the loop, which
//! acts on them between passes.

use std::sync::Arc;

use tokio::sync::{Notify, mpsc};
use tokio_util::sync::CancellationToken;

/// An outside trigger.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
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
    ConfirmHeld,
}

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
                    Control::ResyncAll | Control::ConfirmHeld => {
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
        assert!(tx.send(Control::ConfirmHeld));
        assert_eq!(to_loop.recv().await, Control::ConfirmHeld);
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
