//! PostgreSQL for tests: a fresh database per test, from the store's test helper (see
//! `greenlight_store::postgres::testing` for the environment it reads and when it skips).

pub use greenlight_store::postgres::testing::{backend_is_postgres, TestDb};
