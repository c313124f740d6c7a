//! The scheduler loop: every `tick`, run the hunts that have a slot due
//! ([`Runner::tick`]), until shutdown.

use std::future::Future;
use std::sync::Arc;

use vigil_store::Pool;

use crate::{Runner, Settings, SystemClock};

/// Runs `runner.tick()` every `runner.settings().tick` until `shutdown` resolves.
pub async fn run(runner: Runner, shutdown: impl Future<Output = ()>) {
    let mut every = tokio::time::interval(runner.settings().tick);
    every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    tokio::pin!(shutdown);
    loop {
        tokio::select! {
            _ = &mut shutdown => break,
            _ = every.tick() => {
                if let Err(e) = runner.tick().await {
                    tracing::error!("hunt scheduler: {e}");
                }
            }
        }
    }
}

/// Starts the scheduler on the system clock.
pub fn spawn(
    pool: Pool,
    settings: Settings,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> tokio::task::JoinHandle<()> {
    let runner = Runner::new(pool, settings, Arc::new(SystemClock));
    tokio::spawn(run(runner, shutdown))
}
