//! Intentionally empty: everything lives in tests/.
