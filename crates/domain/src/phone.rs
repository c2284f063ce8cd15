//! Phone numbers and WhatsApp ids (cloud-api-facts.md §1.1).
