//! Time is a dependency. Every rule reads "now" from a [`Clock`]; the sandbox clock is wall time
//! plus an offset that only `POST /sandbox/v1/clock/advance` changes (PRODUCT.md, "Defaults").

use crate::Millis;
use std::sync::atomic::{AtomicI64, Ordering};

pub trait Clock: Send + Sync {
    /// Current (possibly virtual) time, unix milliseconds.
    fn now(&self) -> Millis;
}

/// Wall time plus an offset. The offset is the only mutable part; the wall-time source is
/// injected so tests of the engine can use a fixed time.
pub struct OffsetClock<F: Fn() -> Millis + Send + Sync> {
    wall: F,
    offset: AtomicI64,
}

impl<F: Fn() -> Millis + Send + Sync> OffsetClock<F> {
    pub fn new(wall: F, offset: Millis) -> Self {
        Self {
            wall,
            offset: AtomicI64::new(offset),
        }
    }
    pub fn offset(&self) -> Millis {
        self.offset.load(Ordering::SeqCst)
    }
    pub fn set_offset(&self, offset: Millis) {
        self.offset.store(offset, Ordering::SeqCst)
    }
    pub fn wall(&self) -> Millis {
        (self.wall)()
    }
}

impl<F: Fn() -> Millis + Send + Sync> Clock for OffsetClock<F> {
    fn now(&self) -> Millis {
        (self.wall)() + self.offset.load(Ordering::SeqCst)
    }
}

/// A clock that stands still unless told otherwise: for unit tests of rules.
pub struct FixedClock(pub AtomicI64);

impl FixedClock {
    pub fn at(t: Millis) -> Self {
        Self(AtomicI64::new(t))
    }
    pub fn advance(&self, by: Millis) {
        self.0.fetch_add(by, Ordering::SeqCst);
    }
}

impl Clock for FixedClock {
    fn now(&self) -> Millis {
        self.0.load(Ordering::SeqCst)
    }
}
