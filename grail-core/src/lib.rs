//! Pure protocol core of grail.
//!
//! Everything that is hashed, signed, sampled or checked by consensus lives
//! here, as pure functions over bytes. The only modules that touch files are
//! [`tensors`] (memory-mapped safetensors reading for the weight fingerprint)
//! and [`wallet`] (btcli hotkey files); the rest perform no I/O. Every module
//! but [`tensors`] forbids `unsafe`; `tensors` has exactly one `unsafe` call
//! (the memory map), with its safety argument. PROTOCOL.md at the repository
//! root is the normative specification; each construction here cites its
//! section.
//!
//! | module | PROTOCOL.md |
//! |---|---|
//! | [`hash`] | §2 the one hash construction and its labels |
//! | [`fingerprint`], [`tensors`] | §3 weight fingerprint |
//! | [`window`], [`seeds`] | §4 windows, drand rounds, seeds |
//! | [`sampling`] | §5 verifiable sampling |
//! | [`commit`], [`sketch`] | §6 commitments, commit binding, sketch |
//! | [`challenge`], [`opening`] | §7 opened positions and their checks |
//! | [`wire`] | §8 window file |
//! | [`keys`], [`wallet`] | §9 keys and signatures |
//! | [`params`] | §10 parameters |
//! | [`generation`] | §14 generation parameters, window object key |
#![deny(unsafe_code)]

pub mod beacon;
pub mod challenge;
pub mod commit;
pub mod fingerprint;
pub mod generation;
pub mod hash;
pub mod keys;
pub mod opening;
pub mod params;
pub mod sampling;
pub mod seeds;
pub mod sketch;
pub mod tensors;
pub mod wallet;
pub mod window;
pub mod wire;
