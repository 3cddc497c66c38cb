//! Pure protocol core of grail.
//!
//! Everything that is hashed, signed, sampled or checked by consensus lives
//! here, as pure functions over bytes. The only modules that touch files are
//! [`tensors`] (memory-mapped safetensors reading for the weight fingerprint)
//! and [`wallet`] (btcli hotkey files); every other module forbids `unsafe`
//! and performs no I/O. PROTOCOL.md at the repository root is the normative
//! specification; each construction here cites its section.
#![deny(unsafe_code)]

pub mod challenge;
pub mod commit;
pub mod fingerprint;
pub mod hash;
pub mod keys;
pub mod params;
pub mod sampling;
pub mod seeds;
pub mod sketch;
pub mod tensors;
pub mod wallet;
pub mod window;
pub mod wire;
