//! The policy engine: one module per rule, each pure over (state, now).
