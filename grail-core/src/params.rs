//! Consensus-critical constants, all tied to [`PROTOCOL_VERSION`].
#![forbid(unsafe_code)]

/// Protocol version. Every constant in this crate belongs to this version;
/// changing any of them without bumping it splits miners from validators.
pub const PROTOCOL_VERSION: u16 = 1;
