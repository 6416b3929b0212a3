//! The command queue from the actor to one service task.
//!
//! tokio's unbounded mpsc allocates a cache-padded channel and a block of 32 slots up
//! front: about 1.8 KiB per service that receives a handful of commands in its life. This
//! queue is a `VecDeque` (unallocated until the first command) behind a std mutex, held
//! only to push or pop, never across an await, plus a `Notify` for the waiting task.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use tokio::sync::Notify;

use super::ServiceCmd;

/// A queue of commands for one service task: one sender (the actor's dispatch), one
/// receiver (the task).
pub(crate) fn channel() -> (CmdSender, CmdReceiver) {
    let shared = Arc::new(Queue {
        state: Mutex::new(State {
            cmds: VecDeque::new(),
            sender_gone: false,
            receiver_gone: false,
        }),
        wake: Notify::new(),
    });
    (CmdSender(shared.clone()), CmdReceiver(shared))
}

struct Queue {
    state: Mutex<State>,
    /// The sender notifies after each push and when it goes; the receiver waits.
    wake: Notify,
}

struct State {
    cmds: VecDeque<ServiceCmd>,
    sender_gone: bool,
    receiver_gone: bool,
}

impl Queue {
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// The actor's end. Dropping it ends the task's [`CmdReceiver::recv`] with `None` once the
/// queued commands are taken.
pub(crate) struct CmdSender(Arc<Queue>);

impl CmdSender {
    /// Queues `cmd`; gives it back when the task is gone (its reply sender then drops with
    /// it, so nobody waits for an answer that cannot come).
    pub(crate) fn send(&self, cmd: ServiceCmd) -> Result<(), ServiceCmd> {
        {
            let mut state = self.0.lock();
            if state.receiver_gone {
                return Err(cmd);
            }
            state.cmds.push_back(cmd);
        }
        self.0.wake.notify_one();
        Ok(())
    }
}

impl Drop for CmdSender {
    fn drop(&mut self) {
        self.0.lock().sender_gone = true;
        self.0.wake.notify_one();
    }
}

/// The task's end. Dropping it drops the queued commands (and their reply senders).
pub(crate) struct CmdReceiver(Arc<Queue>);

impl CmdReceiver {
    /// The next command, in order; `None` once the sender is gone and the queue is empty.
    /// Cancel-safe: a command leaves the queue only in the poll that returns it.
    pub(crate) async fn recv(&mut self) -> Option<ServiceCmd> {
        loop {
            {
                let mut state = self.0.lock();
                if let Some(cmd) = state.cmds.pop_front() {
                    return Some(cmd);
                }
                if state.sender_gone {
                    return None;
                }
            }
            // A push between the check and this wait leaves a permit: no lost wake-up.
            self.0.wake.notified().await;
        }
    }
}

impl Drop for CmdReceiver {
    fn drop(&mut self) {
        let dropped = {
            let mut state = self.0.lock();
            state.receiver_gone = true;
            std::mem::take(&mut state.cmds)
        };
        drop(dropped);
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use std::time::Duration;

    use tokio::sync::oneshot;

    use super::*;

    fn stop(epoch: u64) -> (ServiceCmd, oneshot::Receiver<()>) {
        let (reply, rx) = oneshot::channel();
        let cmd = ServiceCmd::Stop {
            epoch,
            by_user: false,
            reply,
        };
        (cmd, rx)
    }

    fn epoch(cmd: ServiceCmd) -> u64 {
        match cmd {
            ServiceCmd::Start { epoch, .. }
            | ServiceCmd::Stop { epoch, .. }
            | ServiceCmd::Restart { epoch, .. }
            | ServiceCmd::Block { epoch, .. } => epoch,
        }
    }

    #[tokio::test]
    async fn delivers_in_order_then_none_once_the_sender_is_gone() {
        let (tx, mut rx) = channel();
        for e in 1..=3 {
            assert!(tx.send(stop(e).0).is_ok());
        }
        drop(tx);
        for e in 1..=3 {
            assert_eq!(epoch(rx.recv().await.unwrap()), e);
        }
        assert!(rx.recv().await.is_none());
    }

    #[tokio::test]
    async fn a_waiting_receiver_wakes_for_a_command_and_for_the_end() {
        let (tx, mut rx) = channel();
        let task = tokio::spawn(async move {
            let first = rx.recv().await.map(epoch);
            let end = rx.recv().await.is_none();
            (first, end)
        });
        tokio::time::sleep(Duration::from_millis(10)).await;
        assert!(tx.send(stop(7).0).is_ok());
        tokio::time::sleep(Duration::from_millis(10)).await;
        drop(tx);
        assert_eq!(task.await.unwrap(), (Some(7), true));
    }

    #[tokio::test]
    async fn a_gone_receiver_refuses_and_drops_what_was_queued() {
        let (tx, rx) = channel();
        let (cmd, queued) = stop(1);
        assert!(tx.send(cmd).is_ok());
        drop(rx);
        assert!(queued.await.is_err(), "the queued reply sender was dropped");
        let (cmd, refused) = stop(2);
        assert!(tx.send(cmd).is_err());
        assert!(refused.await.is_err());
    }
}
