//! `grail keys`.
