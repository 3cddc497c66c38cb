//! Shared helpers for grail integration tests.
