//! Background work: the scheduler that runs whatever has fallen due on the (virtual) clock.
//! It wakes every 50 ms of wall time, and at once when the clock is advanced, so that what
//! falls due "happens within a second of the advance, as if the time had passed".
//!
//! Several nodes on one database share the virtual clock: the scheduler re-reads the offset
//! from the database every [`CLOCK_SYNC`] and only ever moves the local clock forward, so a node
//! lags another node's `clock/advance` by at most that long (the node that advanced sees it at
//! once).

use crate::state::AppState;
use std::time::Duration;
use tokio::sync::watch;

pub fn spawn(state: AppState, stop: watch::Receiver<bool>) {
    crate::webhooks::spawn(state.clone(), stop.clone());
    tokio::spawn(scheduler(state, stop));
}

/// How often the scheduler re-reads the shared clock offset.
pub const CLOCK_SYNC: Duration = Duration::from_millis(500);

/// Moves the local clock forward to the database's offset if another node advanced it.
pub async fn sync_clock(state: &AppState) {
    match state.store.clock_offset().await {
        Ok(offset) if offset > state.clock.offset() => state.clock.set_offset(offset),
        Ok(_) => {}
        Err(e) => tracing::debug!(error = %e, "scheduler: cannot read the clock offset"),
    }
}

async fn scheduler(state: AppState, mut stop: watch::Receiver<bool>) {
    let mut synced = std::time::Instant::now();
    loop {
        if synced.elapsed() >= CLOCK_SYNC {
            sync_clock(&state).await;
            synced = std::time::Instant::now();
        }
        // drain what is due, in bounded batches
        loop {
            match state.store.run_due(state.now(), 1000).await {
                Ok(n) if n >= 1000 => continue,
                Ok(_) => break,
                Err(e) => {
                    tracing::warn!(error = %e, "scheduler: running due work failed; will retry");
                    break;
                }
            }
        }
        tokio::select! {
            _ = tokio::time::sleep(Duration::from_millis(50)) => {}
            _ = state.due.notified() => {}
            _ = stop.changed() => return,
        }
        if *stop.borrow() {
            return;
        }
    }
}
