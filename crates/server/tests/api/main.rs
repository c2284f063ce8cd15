//! greenlight's integration suite: one binary, every test against a real server on port 0
//! with a fresh database.

mod audit;
mod common;
mod compliance_common;
mod compliance_enforcement;
mod compliance_quality;
mod compliance_verification;
mod consent;
mod gateway;
mod media;
mod messages;
mod multinode;
mod ops;
mod outage;
mod pg;
mod rules;
mod secrets;
mod templates;
mod tenancy;
mod transfer;
mod webhooks;
mod window;
