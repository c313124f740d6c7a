//! A cloneable "stop now" signal for long-running pipeline tasks.

use tokio::sync::watch;

/// Held by tasks: `wait()` resolves once shutdown is triggered.
#[derive(Debug, Clone)]
pub struct Shutdown {
    rx: watch::Receiver<bool>,
}

/// Held by the owner: `trigger()` stops every task holding the matching [`Shutdown`].
#[derive(Debug)]
pub struct Trigger(watch::Sender<bool>);

impl Shutdown {
    pub fn new() -> (Trigger, Shutdown) {
        let (tx, rx) = watch::channel(false);
        (Trigger(tx), Shutdown { rx })
    }

    pub fn is_set(&self) -> bool {
        *self.rx.borrow()
    }

    pub async fn wait(&self) {
        let mut rx = self.rx.clone();
        // An error means the trigger was dropped: treat it as shutdown too.
        let _ = rx.wait_for(|stop| *stop).await;
    }
}

impl Trigger {
    pub fn trigger(&self) {
        let _ = self.0.send(true);
    }
}

impl Drop for Trigger {
    fn drop(&mut self) {
        let _ = self.0.send(true);
    }
}
