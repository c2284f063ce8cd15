//! greenlight's domain: the types of the WhatsApp Cloud API surface and the policy engine.
//!
//! Everything here is pure: no I/O, no wall clock, no randomness. Time enters as an argument
//! (`now`, unix milliseconds) read by the caller from an injected [`clock::Clock`]. The store
//! and the HTTP layer depend on this crate; it depends on nothing of theirs.
#![forbid(unsafe_code)]

pub mod bsuid;
pub mod clock;
pub mod error;
pub mod message;
pub mod phone;
pub mod policy;
pub mod pricing;
pub mod template;
pub mod webhook;

pub use error::ApiError;

/// Unix time in milliseconds: the unit of every instant the engine reasons about.
pub type Millis = i64;

pub const SECOND: Millis = 1_000;
pub const MINUTE: Millis = 60 * SECOND;
pub const HOUR: Millis = 60 * MINUTE;
pub const DAY: Millis = 24 * HOUR;
