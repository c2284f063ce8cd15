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

/// Most scheduled tasks (mostly `delivered` transitions) run in one writer job.
const DUE_PER_JOB: usize = 64;

async fn scheduler(state: AppState, mut stop: watch::Receiver<bool>) {
    let mut synced = std::time::Instant::now();
    loop {
        if synced.elapsed() >= CLOCK_SYNC {
            sync_clock(&state).await;
            synced = std::time::Instant::now();
        }
        // Drain what is due in small jobs: the writer runs jobs in order, so a send queued
        // behind a job of 1,000 `delivered` transitions waited for all of them (~10 ms at the
        // benchmark's rate, the tail of its latency); between jobs of 64 it waits ~1 ms.
        loop {
            match state.store.run_due(state.now(), DUE_PER_JOB).await {
                Ok(n) if n >= DUE_PER_JOB => continue,
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
