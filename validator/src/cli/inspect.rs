//! `grail inspect`.
