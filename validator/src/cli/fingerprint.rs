//! `grail fingerprint`.
