//! Per-message pricing (cloud-api-facts.md §11.1).
