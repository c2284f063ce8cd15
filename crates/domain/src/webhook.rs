//! Webhook payload values (cloud-api-facts.md §10).
