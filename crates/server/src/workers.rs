//! Background work: the scheduler that runs whatever has fallen due on the (virtual) clock.
//! It wakes every 50 ms of wall time, and at once when the clock is advanced, so that what
//! falls due "happens within a second of the advance, as if the time had passed".

use crate::state::AppState;
use std::time::Duration;
use tokio::sync::watch;

pub fn spawn(state: AppState, stop: watch::Receiver<bool>) {
    crate::webhooks::spawn(state.clone(), stop.clone());
    tokio::spawn(scheduler(state, stop));
}

async fn scheduler(state: AppState, mut stop: watch::Receiver<bool>) {
    loop {
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
