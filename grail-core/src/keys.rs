//! sr25519 hotkeys, SS58 addresses and Substrate-style secret URIs.
//!
//! Pure: no I/O, no environment. Reading btcli wallet files is
//! [`crate::wallet`]'s job; this module only turns secret material that is
//! already in memory into a [`Keypair`], and checks signatures against a
//! [`Hotkey`].
//!
//! Everything here is bit-compatible with `sp-core` (Substrate) and with the
//! Bittensor wallet tooling built on it:
//!
//! * signatures are schnorrkel sr25519 under the signing context
//!   [`SIGNING_CONTEXT`];
//! * a 32-byte mini secret expands with `ExpansionMode::Ed25519`;
//! * a BIP39 phrase becomes a mini secret the `substrate-bip39` way (PBKDF2 over
//!   the mnemonic's *entropy*, not the BIP39 seed of the phrase text);
//! * secret URIs (`//Alice`, `phrase//hard/soft///password`, `0x<seed>//path`)
//!   follow `sp_core::crypto::AddressUri` and `DeriveJunction`;
//! * addresses are SS58 with the single-byte network prefix [`SS58_PREFIX`].
#![forbid(unsafe_code)]

use std::fmt;
use std::str::FromStr;

use blake2::digest::consts::U32;
use blake2::{Blake2b, Blake2b512, Digest};
use schnorrkel::derive::{ChainCode, Derivation};
use schnorrkel::{signing_context, ExpansionMode, MiniSecretKey, PublicKey, SecretKey, Signature};
use sha2::Sha512;
use zeroize::Zeroizing;

/// Length in bytes of an sr25519 public key (a compressed Ristretto point).
pub const PUBLIC_KEY_LEN: usize = 32;
/// Length in bytes of an sr25519 signature.
pub const SIGNATURE_LEN: usize = 64;
/// Length in bytes of a mini secret key (the "secret seed" of Substrate tools).
pub const MINI_SECRET_LEN: usize = 32;
/// Length in bytes of an expanded schnorrkel secret key (`SecretKey::to_bytes`:
/// 32-byte scalar followed by the 32-byte nonce seed).
pub const SECRET_KEY_LEN: usize = 64;

/// schnorrkel signing context for every signature grail makes or checks.
/// Substrate's value: changing it makes every signature from Substrate/Bittensor
/// tooling fail to verify, and every grail signature unverifiable by them. Part
/// of [`crate::params::PROTOCOL_VERSION`].
pub const SIGNING_CONTEXT: &[u8] = b"substrate";

/// SS58 network prefix of Bittensor (the generic Substrate prefix). Changing it
/// changes every printed address; addresses of another network are rejected by
/// [`Hotkey::from_ss58`]. Part of [`crate::params::PROTOCOL_VERSION`].
pub const SS58_PREFIX: u8 = 42;

/// Domain-separation label hashed in front of an SS58 payload to make its
/// checksum (fixed by the SS58 specification).
pub const SS58_CHECKSUM_LABEL: &[u8] = b"SS58PRE";

/// Bytes of the blake2b-512 digest kept as the SS58 checksum of a 32-byte key.
pub const SS58_CHECKSUM_LEN: usize = 2;

/// Decoded length of an SS58 address of a 32-byte key with a single-byte prefix.
pub const SS58_DECODED_LEN: usize = 1 + PUBLIC_KEY_LEN + SS58_CHECKSUM_LEN;

/// Longest SS58 string accepted before base58 decoding is attempted. A 35-byte
/// payload encodes to at most 48 characters; the cap keeps decoding of
/// untrusted input bounded.
pub const SS58_MAX_CHARS: usize = 64;

/// The publicly known development phrase of Substrate (`sp_core::crypto::DEV_PHRASE`).
/// A secret URI without a phrase (`//Alice`) derives from it. Never hold funds
/// or stake on keys derived from it.
pub const DEV_PHRASE: &str =
    "bottom drive obey lake curtain smoke basket hold race lonely fit walk";

/// Names accepted by [`Keypair::dev`] (case-insensitive); each is the hard
/// junction `//<Name>` on [`DEV_PHRASE`].
pub const DEV_NAMES: [&str; 6] = ["alice", "bob", "charlie", "dave", "eve", "ferdie"];

/// PBKDF2-HMAC-SHA512 rounds of `substrate-bip39` (the BIP39 value).
const BIP39_PBKDF2_ROUNDS: u32 = 2048;
/// PBKDF2 salt prefix of `substrate-bip39` (the BIP39 value); the password follows it.
const BIP39_SALT_PREFIX: &str = "mnemonic";
/// Length of a derivation junction identifier / chain code.
const JUNCTION_ID_LEN: usize = 32;

/// Why a key, address, signature, phrase or secret URI was rejected.
///
/// Messages never contain secret material: phrase and secret-URI errors name a
/// byte position or a count, not the text.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum KeyError {
    /// The SS58 string is longer than any address of a 32-byte key can be.
    #[error("SS58 address is {chars} characters long, more than the {max} any 32-byte key address can have")]
    Ss58TooLong { chars: usize, max: usize },
    /// The SS58 string is not base58 (bitcoin alphabet).
    #[error("SS58 address {address:?} is not valid base58: {source}")]
    Ss58Base58 {
        address: String,
        #[source]
        source: bs58::decode::Error,
    },
    /// The SS58 string decodes to the wrong number of bytes.
    #[error("SS58 address {address:?} decodes to {len} bytes, expected {expected} (1-byte network prefix, 32-byte public key, 2-byte checksum)")]
    Ss58Length {
        address: String,
        len: usize,
        expected: usize,
    },
    /// The 2-byte SS58 checksum does not match the prefix and key.
    #[error("SS58 address {address:?} has a bad checksum (mistyped or truncated address)")]
    Ss58Checksum { address: String },
    /// A well-formed SS58 address of another network.
    #[error("SS58 address {address:?} has network prefix {got}, expected {expected} (Bittensor)")]
    Ss58Prefix {
        address: String,
        got: u8,
        expected: u8,
    },
    /// The public key bytes are not a valid Ristretto point encoding.
    #[error("public key {hotkey} is not a valid sr25519 public key: {reason}")]
    MalformedPublicKey { hotkey: Hotkey, reason: String },
    /// The signature bytes are not a schnorrkel signature (marker bit missing,
    /// non-canonical scalar).
    #[error("signature presented for hotkey {hotkey} is malformed: {reason}")]
    MalformedSignature { hotkey: Hotkey, reason: String },
    /// Well-formed key and signature, but the signature is not valid for this
    /// key and message.
    #[error("signature does not verify for hotkey {hotkey}")]
    BadSignature { hotkey: Hotkey },
    /// The phrase is not a valid English BIP39 mnemonic.
    #[error("secret phrase is not a valid English BIP39 mnemonic: {source}")]
    InvalidPhrase {
        #[source]
        source: bip39::Error,
    },
    /// 64 bytes that are not a schnorrkel `SecretKey::to_bytes` encoding.
    #[error("secret key bytes are not a valid sr25519 secret key: {reason}")]
    InvalidSecretKey { reason: String },
    /// [`Keypair::dev`] with a name outside [`DEV_NAMES`].
    #[error("unknown dev account {name:?}; known: alice, bob, charlie, dave, eve, ferdie")]
    UnknownDevName { name: String },
    /// A character outside `[A-Za-z0-9 ]` in the phrase part of a secret URI
    /// (before any `/`).
    #[error("secret URI: character at byte {index} is not allowed in the phrase part (letters, digits, spaces)")]
    SuriPhraseCharacter { index: usize },
    /// A `/` or `//` with nothing after it.
    #[error("secret URI: empty derivation junction at byte {index}")]
    SuriEmptyJunction { index: usize },
    /// A newline in the `///password` part.
    #[error("secret URI: newline in the password at byte {index}")]
    SuriPasswordCharacter { index: usize },
    /// A `0x...` seed that is not hex.
    #[error("secret URI: the 0x seed is not valid hex: {source}")]
    SuriSeedHex {
        #[source]
        source: hex::FromHexError,
    },
    /// A `0x...` seed of the wrong length.
    #[error("secret URI: the 0x seed is {len} bytes, expected {expected}")]
    SuriSeedLength { len: usize, expected: usize },
    /// A `///password` together with a `0x...` seed: the password only applies
    /// to phrases, so it would be silently ignored.
    #[error(
        "secret URI: a ///password cannot be used with a 0x seed (it only applies to a phrase)"
    )]
    SuriPasswordWithSeed,
}

/// An sr25519 public key: the identity of a miner or validator on the subnet.
///
/// Any 32 bytes form a `Hotkey`; whether they are a valid curve point is
/// checked by [`verify`].
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug, PartialOrd, Ord)]
pub struct Hotkey([u8; PUBLIC_KEY_LEN]);

impl Hotkey {
    /// Wrap raw public key bytes.
    pub const fn from_bytes(bytes: [u8; PUBLIC_KEY_LEN]) -> Hotkey {
        Hotkey(bytes)
    }

    /// The raw public key bytes.
    pub const fn as_bytes(&self) -> &[u8; PUBLIC_KEY_LEN] {
        &self.0
    }

    /// SS58 address with prefix [`SS58_PREFIX`].
    pub fn to_ss58(&self) -> String {
        let mut payload = [0u8; SS58_DECODED_LEN];
        payload[0] = SS58_PREFIX;
        payload[1..1 + PUBLIC_KEY_LEN].copy_from_slice(&self.0);
        let checksum = ss58_checksum(&payload[..1 + PUBLIC_KEY_LEN]);
        payload[1 + PUBLIC_KEY_LEN..].copy_from_slice(&checksum);
        bs58::encode(payload).into_string()
    }

    /// Parse an SS58 address: base58, exactly [`SS58_DECODED_LEN`] bytes,
    /// valid checksum, prefix [`SS58_PREFIX`] (checked in that order).
    pub fn from_ss58(address: &str) -> Result<Hotkey, KeyError> {
        if address.len() > SS58_MAX_CHARS {
            return Err(KeyError::Ss58TooLong {
                chars: address.chars().count(),
                max: SS58_MAX_CHARS,
            });
        }
        // SS58_MAX_CHARS base58 digits decode to at most 47 bytes, so the
        // buffer cannot overflow; if it did, bs58 reports BufferTooSmall.
        let mut buf = [0u8; SS58_MAX_CHARS];
        let len = bs58::decode(address)
            .onto(&mut buf)
            .map_err(|source| KeyError::Ss58Base58 {
                address: address.to_owned(),
                source,
            })?;
        if len != SS58_DECODED_LEN {
            return Err(KeyError::Ss58Length {
                address: address.to_owned(),
                len,
                expected: SS58_DECODED_LEN,
            });
        }
        let (body, checksum) = buf[..len].split_at(1 + PUBLIC_KEY_LEN);
        if ss58_checksum(body) != checksum {
            return Err(KeyError::Ss58Checksum {
                address: address.to_owned(),
            });
        }
        if body[0] != SS58_PREFIX {
            return Err(KeyError::Ss58Prefix {
                address: address.to_owned(),
                got: body[0],
                expected: SS58_PREFIX,
            });
        }
        let mut key = [0u8; PUBLIC_KEY_LEN];
        key.copy_from_slice(&body[1..]);
        Ok(Hotkey(key))
    }
}

impl fmt::Display for Hotkey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_ss58())
    }
}

impl FromStr for Hotkey {
    type Err = KeyError;

    fn from_str(s: &str) -> Result<Hotkey, KeyError> {
        Hotkey::from_ss58(s)
    }
}

/// First [`SS58_CHECKSUM_LEN`] bytes of blake2b-512(`SS58PRE` || prefix || key).
fn ss58_checksum(body: &[u8]) -> [u8; SS58_CHECKSUM_LEN] {
    let digest = Blake2b512::new()
        .chain_update(SS58_CHECKSUM_LABEL)
        .chain_update(body)
        .finalize();
    let mut out = [0u8; SS58_CHECKSUM_LEN];
    out.copy_from_slice(&digest[..SS58_CHECKSUM_LEN]);
    out
}

/// An sr25519 key pair. The secret half is zeroized on drop (by schnorrkel);
/// `Debug` shows only the public half.
#[derive(Clone)]
pub struct Keypair(schnorrkel::Keypair);

impl fmt::Debug for Keypair {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Keypair")
            .field("hotkey", &self.hotkey().to_ss58())
            .finish_non_exhaustive()
    }
}

impl Keypair {
    /// From a 32-byte mini secret ("secret seed"), expanded the Substrate way
    /// (`ExpansionMode::Ed25519`).
    pub fn from_mini_secret(seed: &[u8; MINI_SECRET_LEN]) -> Keypair {
        let mini = MiniSecretKey::from_bytes(seed)
            .expect("MiniSecretKey::from_bytes only fails on a length other than 32");
        Keypair(mini.expand_to_keypair(ExpansionMode::Ed25519))
    }

    /// From the 64-byte encoding of schnorrkel's `SecretKey::to_bytes`
    /// (canonical scalar, then nonce seed): the `privateKey` of btcli files.
    pub fn from_secret_key_bytes(bytes: &[u8; SECRET_KEY_LEN]) -> Result<Keypair, KeyError> {
        let secret = SecretKey::from_bytes(bytes).map_err(|e| KeyError::InvalidSecretKey {
            reason: e.to_string(),
        })?;
        Ok(Keypair(secret.to_keypair()))
    }

    /// From an English BIP39 phrase and optional password, the
    /// `substrate-bip39` way: the mnemonic's entropy is the PBKDF2 password,
    /// `"mnemonic" + password` the salt, and the first 32 bytes of the output
    /// the mini secret.
    pub fn from_phrase(phrase: &str, password: Option<&str>) -> Result<Keypair, KeyError> {
        let mini = mini_secret_from_phrase(phrase, password.unwrap_or(""))?;
        Ok(Keypair::from_mini_secret(&mini))
    }

    /// From a Substrate secret URI: `[phrase | 0x<32-byte hex seed>][//hard | /soft]*[///password]`.
    /// A missing phrase means [`DEV_PHRASE`], so `//Alice` is Alice's dev key.
    pub fn from_suri(suri: &str) -> Result<Keypair, KeyError> {
        let parsed = parse_suri(suri)?;
        let phrase = parsed.phrase.unwrap_or(DEV_PHRASE);
        let root = match phrase.strip_prefix("0x") {
            Some(hex_seed) => {
                if parsed.password.is_some() {
                    return Err(KeyError::SuriPasswordWithSeed);
                }
                let bytes = Zeroizing::new(
                    hex::decode(hex_seed).map_err(|source| KeyError::SuriSeedHex { source })?,
                );
                let seed: Zeroizing<[u8; MINI_SECRET_LEN]> =
                    Zeroizing::new(bytes.as_slice().try_into().map_err(|_| {
                        KeyError::SuriSeedLength {
                            len: bytes.len(),
                            expected: MINI_SECRET_LEN,
                        }
                    })?);
                Keypair::from_mini_secret(&seed)
            }
            None => Keypair::from_phrase(phrase, parsed.password)?,
        };
        Ok(root.derive(&parsed.junctions))
    }

    /// A well-known development key: `//Alice`, `//Bob`, ... on [`DEV_PHRASE`].
    /// `name` is one of [`DEV_NAMES`], in any case.
    pub fn dev(name: &str) -> Result<Keypair, KeyError> {
        let lower = name.to_ascii_lowercase();
        if !DEV_NAMES.contains(&lower.as_str()) {
            return Err(KeyError::UnknownDevName {
                name: name.to_owned(),
            });
        }
        let mut junction = String::with_capacity(lower.len());
        let mut chars = lower.chars();
        if let Some(first) = chars.next() {
            junction.push(first.to_ascii_uppercase());
        }
        junction.extend(chars);
        Ok(Keypair::from_phrase(DEV_PHRASE, None)?.derive(&[Junction {
            hard: true,
            code: &junction,
        }]))
    }

    /// The public half.
    pub fn hotkey(&self) -> Hotkey {
        Hotkey(self.0.public.to_bytes())
    }

    /// Sign `msg` under [`SIGNING_CONTEXT`]. Signatures are randomized
    /// (schnorrkel mixes fresh randomness into the nonce), so two signatures
    /// of one message differ; both verify.
    pub fn sign(&self, msg: &[u8]) -> [u8; SIGNATURE_LEN] {
        self.0
            .sign(signing_context(SIGNING_CONTEXT).bytes(msg))
            .to_bytes()
    }

    /// Apply derivation junctions in order, as `sp_core::sr25519::Pair::derive`.
    fn derive(&self, junctions: &[Junction<'_>]) -> Keypair {
        let mut secret = self.0.secret.clone();
        for junction in junctions {
            let cc = ChainCode(junction.chain_code());
            secret = if junction.hard {
                secret
                    .hard_derive_mini_secret_key(Some(cc), b"")
                    .0
                    .expand(ExpansionMode::Ed25519)
            } else {
                secret.derived_key_simple(cc, b"").0
            };
        }
        Keypair(secret.to_keypair())
    }
}

/// Check an sr25519 signature over `msg` under [`SIGNING_CONTEXT`].
///
/// Each failure has its own variant: [`KeyError::MalformedPublicKey`],
/// [`KeyError::MalformedSignature`], [`KeyError::BadSignature`].
pub fn verify(hotkey: &Hotkey, msg: &[u8], sig: &[u8; SIGNATURE_LEN]) -> Result<(), KeyError> {
    let public =
        PublicKey::from_bytes(hotkey.as_bytes()).map_err(|e| KeyError::MalformedPublicKey {
            hotkey: *hotkey,
            reason: e.to_string(),
        })?;
    let signature = Signature::from_bytes(sig).map_err(|e| KeyError::MalformedSignature {
        hotkey: *hotkey,
        reason: e.to_string(),
    })?;
    public
        .verify_simple(SIGNING_CONTEXT, msg, &signature)
        .map_err(|_| KeyError::BadSignature { hotkey: *hotkey })
}

/// `substrate-bip39`'s `mini_secret_from_entropy` over the phrase's entropy.
fn mini_secret_from_phrase(
    phrase: &str,
    password: &str,
) -> Result<Zeroizing<[u8; MINI_SECRET_LEN]>, KeyError> {
    let mnemonic = bip39::Mnemonic::parse_in(bip39::Language::English, phrase)
        .map_err(|source| KeyError::InvalidPhrase { source })?;
    // A valid mnemonic has 12..=24 words, i.e. 16..=32 bytes of entropy, the
    // range substrate-bip39 accepts.
    let (entropy, entropy_len) = mnemonic.to_entropy_array();
    let entropy = Zeroizing::new(entropy);
    let mut salt = Zeroizing::new(String::with_capacity(
        BIP39_SALT_PREFIX.len() + password.len(),
    ));
    salt.push_str(BIP39_SALT_PREFIX);
    salt.push_str(password);
    let mut seed = Zeroizing::new([0u8; 64]);
    pbkdf2::pbkdf2_hmac::<Sha512>(
        &entropy[..entropy_len],
        salt.as_bytes(),
        BIP39_PBKDF2_ROUNDS,
        seed.as_mut_slice(),
    );
    let mut mini = Zeroizing::new([0u8; MINI_SECRET_LEN]);
    mini.copy_from_slice(&seed[..MINI_SECRET_LEN]);
    Ok(mini)
}

/// One derivation step of a secret URI: `//code` (hard) or `/code` (soft).
#[derive(Debug, PartialEq, Eq)]
struct Junction<'a> {
    hard: bool,
    code: &'a str,
}

impl Junction<'_> {
    /// `sp_core::crypto::DeriveJunction::from(&str)`: a code that parses as a
    /// `u64` is its 8 little-endian bytes, anything else the SCALE encoding of
    /// the string (compact length, then UTF-8); the result zero-padded to 32
    /// bytes, or its blake2b-256 if longer.
    fn chain_code(&self) -> [u8; JUNCTION_ID_LEN] {
        let mut encoded = Zeroizing::new(Vec::with_capacity(self.code.len() + 5));
        match self.code.parse::<u64>() {
            Ok(n) => encoded.extend_from_slice(&n.to_le_bytes()),
            Err(_) => {
                scale_compact_len(self.code.len(), &mut encoded);
                encoded.extend_from_slice(self.code.as_bytes());
            }
        }
        let mut cc = [0u8; JUNCTION_ID_LEN];
        if encoded.len() > JUNCTION_ID_LEN {
            cc = Blake2b::<U32>::digest(encoded.as_slice()).into();
        } else {
            cc[..encoded.len()].copy_from_slice(&encoded);
        }
        cc
    }
}

/// SCALE `Compact<u32>` encoding of a length (big-integer mode above 2^30 - 1).
fn scale_compact_len(len: usize, out: &mut Vec<u8>) {
    let n = len as u64;
    if n < 1 << 6 {
        out.push((n as u8) << 2);
    } else if n < 1 << 14 {
        out.extend_from_slice(&(((n as u16) << 2) | 0b01).to_le_bytes());
    } else if n < 1 << 30 {
        out.extend_from_slice(&(((n as u32) << 2) | 0b10).to_le_bytes());
    } else {
        let bytes = n.to_le_bytes();
        let used = (8 - n.leading_zeros() as usize / 8).max(4);
        out.push((((used - 4) as u8) << 2) | 0b11);
        out.extend_from_slice(&bytes[..used]);
    }
}

/// A parsed secret URI, borrowing from the input.
#[derive(Debug, PartialEq, Eq)]
struct Suri<'a> {
    phrase: Option<&'a str>,
    junctions: Vec<Junction<'a>>,
    password: Option<&'a str>,
}

/// Parse like `sp_core::crypto::AddressUri::parse`: a phrase of
/// `[A-Za-z0-9 ]`, then `//hard` and `/soft` junctions (any characters but
/// `/`), then optionally `///password` (anything but a newline, `/` included).
fn parse_suri(input: &str) -> Result<Suri<'_>, KeyError> {
    let phrase_end = input
        .find(|c: char| !(c.is_ascii_alphanumeric() || c == ' '))
        .unwrap_or(input.len());
    let phrase = (phrase_end > 0).then(|| &input[..phrase_end]);
    let mut junctions = Vec::new();
    let mut password = None;
    let mut rest = &input[phrase_end..];
    while !rest.is_empty() {
        let at = input.len() - rest.len();
        if let Some(pass) = rest.strip_prefix("///") {
            if let Some(i) = pass.find('\n') {
                return Err(KeyError::SuriPasswordCharacter { index: at + 3 + i });
            }
            password = Some(pass);
            rest = "";
        } else if let Some(after) = rest.strip_prefix('/') {
            let (hard, after) = match after.strip_prefix('/') {
                Some(after_hard) => (true, after_hard),
                None => (false, after),
            };
            let end = after.find('/').unwrap_or(after.len());
            if end == 0 {
                return Err(KeyError::SuriEmptyJunction { index: at });
            }
            junctions.push(Junction {
                hard,
                code: &after[..end],
            });
            rest = &after[end..];
        } else {
            return Err(KeyError::SuriPhraseCharacter { index: at });
        }
    }
    Ok(Suri {
        phrase,
        junctions,
        password,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const ALICE_SS58: &str = "5GrwvaEF5zXb26Fz9rcQpDWS57CtERHpNehXCPcNoHGKutQY";
    const BOB_SS58: &str = "5FHneW46xGXgs5mUiveU4sbTyGBzmstUspZC92UhjJM694ty";
    const ALICE_PUBLIC_HEX: &str =
        "d43593c715fdd31c61141abd04a99fd6822c8558854ccde39a5684e7a56da27d";
    /// `subkey inspect //Alice`: secret seed.
    const ALICE_SEED_HEX: &str = "e5be9a5092b81bca64be81d212e7f2f9eba183bb7a90954f7b76361f6edb5c0a";
    /// `subkey inspect //Bob`: secret seed.
    const BOB_SEED_HEX: &str = "398f0c28f98885e046333d4a41c19cee4c37368a9832c6502f6cfd182e2aef89";
    /// `sp_core::crypto::DEV_ADDRESS`: the root key of DEV_PHRASE.
    const DEV_ADDRESS: &str = "5DfhGyQdFobKM8NsWvEeAKk5EQQgYe9AydgJ7rMB6E1EqRzV";

    fn seed(hex_str: &str) -> [u8; 32] {
        hex::decode(hex_str).unwrap().try_into().unwrap()
    }

    /// SS58 with an arbitrary prefix byte and a correct checksum.
    fn ss58_with_prefix(prefix: u8, key: &[u8; 32]) -> String {
        let mut payload = vec![prefix];
        payload.extend_from_slice(key);
        let checksum = ss58_checksum(&payload);
        payload.extend_from_slice(&checksum);
        bs58::encode(payload).into_string()
    }

    #[test]
    fn alice_suri_known_answer() {
        let alice = Keypair::from_suri("//Alice").unwrap();
        assert_eq!(alice.hotkey().to_ss58(), ALICE_SS58);
        assert_eq!(hex::encode(alice.hotkey().as_bytes()), ALICE_PUBLIC_HEX);
    }

    #[test]
    fn bob_suri_known_answer() {
        let bob = Keypair::from_suri("//Bob").unwrap();
        assert_eq!(bob.hotkey().to_ss58(), BOB_SS58);
    }

    #[test]
    fn dev_names_match_suris_and_ignore_case() {
        for name in DEV_NAMES {
            let mut capitalized = name.to_owned();
            capitalized[..1].make_ascii_uppercase();
            let from_suri = Keypair::from_suri(&format!("//{capitalized}")).unwrap();
            assert_eq!(
                Keypair::dev(name).unwrap().hotkey(),
                from_suri.hotkey(),
                "{name}"
            );
        }
        assert_eq!(
            Keypair::dev("ALICE").unwrap().hotkey().to_ss58(),
            ALICE_SS58
        );
        assert_eq!(Keypair::dev("Bob").unwrap().hotkey().to_ss58(), BOB_SS58);
    }

    #[test]
    fn dev_unknown_name_rejected() {
        assert_eq!(
            Keypair::dev("mallory").unwrap_err(),
            KeyError::UnknownDevName {
                name: "mallory".into()
            }
        );
    }

    #[test]
    fn mini_secret_known_answers() {
        // The seeds subkey prints for //Alice and //Bob expand to their keys.
        assert_eq!(
            Keypair::from_mini_secret(&seed(ALICE_SEED_HEX))
                .hotkey()
                .to_ss58(),
            ALICE_SS58
        );
        assert_eq!(
            Keypair::from_mini_secret(&seed(BOB_SEED_HEX))
                .hotkey()
                .to_ss58(),
            BOB_SS58
        );
        // sp-core sr25519 `sr_test_vector_should_work` and `seeded_pair_should_work`.
        assert_eq!(
            hex::encode(
                Keypair::from_mini_secret(&seed(
                    "9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60"
                ))
                .hotkey()
                .as_bytes()
            ),
            "44a996beb1eef7bdcab976ab6d2ca26104834164ecf28fb375600576fcc6eb0f"
        );
        assert_eq!(
            hex::encode(
                Keypair::from_mini_secret(b"12345678901234567890123456789012")
                    .hotkey()
                    .as_bytes()
            ),
            "741c08a06f41c596608f6774259bd9043304adfa5d3eea62760bd9be97634d63"
        );
    }

    #[test]
    fn dev_phrase_root_known_answer() {
        let root = Keypair::from_phrase(DEV_PHRASE, None).unwrap();
        assert_eq!(root.hotkey().to_ss58(), DEV_ADDRESS);
        // An empty URI is the dev phrase itself.
        assert_eq!(
            Keypair::from_suri("").unwrap().hotkey().to_ss58(),
            DEV_ADDRESS
        );
    }

    #[test]
    fn soft_junction_known_answer() {
        // sp-core sr25519 `derive_soft_known_pair_should_work`.
        let pair = Keypair::from_suri(&format!("{DEV_PHRASE}/Alice")).unwrap();
        assert_eq!(
            hex::encode(pair.hotkey().as_bytes()),
            "d6c71059dbbe9ad2b0ed3f289738b800836eb425544ce694825285b958ca755e"
        );
        assert_eq!(
            Keypair::from_suri("/Alice").unwrap().hotkey(),
            pair.hotkey()
        );
    }

    #[test]
    fn hard_junction_on_explicit_phrase_and_seed() {
        let alice = Keypair::from_suri(&format!("{DEV_PHRASE}//Alice")).unwrap();
        assert_eq!(alice.hotkey().to_ss58(), ALICE_SS58);
        let from_seed = Keypair::from_suri(&format!("0x{ALICE_SEED_HEX}")).unwrap();
        assert_eq!(from_seed.hotkey().to_ss58(), ALICE_SS58);
    }

    #[test]
    fn mixed_path_and_password() {
        // Distinct paths give distinct keys; the same path is deterministic
        // even through soft steps (whose nonces are random).
        let a = Keypair::from_suri("//Alice/stash//1").unwrap();
        let b = Keypair::from_suri("//Alice/stash//1").unwrap();
        let c = Keypair::from_suri("//Alice/stash/1").unwrap();
        assert_eq!(a.hotkey(), b.hotkey());
        assert_ne!(a.hotkey(), c.hotkey());
        // sp-core `default_phrase_should_be_used`.
        let with_password = Keypair::from_suri("//Alice///password").unwrap();
        let phrase_password = Keypair::from_phrase(DEV_PHRASE, Some("password"))
            .unwrap()
            .derive(&[Junction {
                hard: true,
                code: "Alice",
            }]);
        assert_eq!(with_password.hotkey(), phrase_password.hotkey());
        assert_ne!(with_password.hotkey().to_ss58(), ALICE_SS58);
    }

    #[test]
    fn junction_chain_codes() {
        let j = |code| Junction { hard: true, code };
        // String: compact length prefix then bytes, zero-padded.
        let mut want = [0u8; 32];
        want[0] = 5 << 2;
        want[1..6].copy_from_slice(b"Alice");
        assert_eq!(j("Alice").chain_code(), want);
        // Number: u64 little-endian.
        let mut want = [0u8; 32];
        want[..8].copy_from_slice(&1u64.to_le_bytes());
        assert_eq!(j("1").chain_code(), want);
        // Longer than 32 bytes once encoded: blake2b-256 of the encoding.
        let long = "a".repeat(40);
        let mut encoded = vec![40u8 << 2];
        encoded.extend_from_slice(long.as_bytes());
        let want: [u8; 32] = Blake2b::<U32>::digest(&encoded).into();
        assert_eq!(j(&long).chain_code(), want);
        // 31 chars + 1 length byte is exactly 32: padded, not hashed.
        let edge = "b".repeat(31);
        assert_eq!(j(&edge).chain_code()[1..], *edge.as_bytes());
    }

    #[test]
    fn scale_compact_lengths() {
        let enc = |n| {
            let mut v = Vec::new();
            scale_compact_len(n, &mut v);
            v
        };
        assert_eq!(enc(0), [0x00]);
        assert_eq!(enc(63), [0xfc]);
        assert_eq!(enc(64), [0x01, 0x01]);
        assert_eq!(enc(16383), [0xfd, 0xff]);
        assert_eq!(enc(16384), [0x02, 0x00, 0x01, 0x00]);
        assert_eq!(enc((1 << 30) - 1), [0xfe, 0xff, 0xff, 0xff]);
        assert_eq!(enc(1 << 30), [0x03, 0x00, 0x00, 0x00, 0x40]);
    }

    #[test]
    fn suri_parse_shapes() {
        let s = parse_suri("sdasd/xx//a/b//c///pa//ss").unwrap();
        assert_eq!(s.phrase, Some("sdasd"));
        assert_eq!(
            s.junctions,
            vec![
                Junction {
                    hard: false,
                    code: "xx"
                },
                Junction {
                    hard: true,
                    code: "a"
                },
                Junction {
                    hard: false,
                    code: "b"
                },
                Junction {
                    hard: true,
                    code: "c"
                },
            ]
        );
        assert_eq!(s.password, Some("pa//ss"));
        let s = parse_suri("////////").unwrap();
        assert_eq!((s.phrase, s.password), (None, Some("/////")));
        assert_eq!(parse_suri("x//a.b").unwrap().junctions[0].code, "a.b");
    }

    #[test]
    fn suri_phrase_character_rejected() {
        assert_eq!(
            Keypair::from_suri("sd.asd//x").unwrap_err(),
            KeyError::SuriPhraseCharacter { index: 2 }
        );
    }

    #[test]
    fn suri_empty_junction_rejected() {
        assert_eq!(
            Keypair::from_suri("//Alice//").unwrap_err(),
            KeyError::SuriEmptyJunction { index: 7 }
        );
        assert_eq!(
            Keypair::from_suri("//Alice/").unwrap_err(),
            KeyError::SuriEmptyJunction { index: 7 }
        );
    }

    #[test]
    fn suri_password_newline_rejected() {
        assert_eq!(
            Keypair::from_suri("//Alice///pa\nss").unwrap_err(),
            KeyError::SuriPasswordCharacter { index: 12 }
        );
    }

    #[test]
    fn suri_seed_hex_rejected() {
        assert!(matches!(
            Keypair::from_suri("0xzz").unwrap_err(),
            KeyError::SuriSeedHex { .. }
        ));
    }

    #[test]
    fn suri_seed_length_rejected() {
        assert_eq!(
            Keypair::from_suri("0x0102").unwrap_err(),
            KeyError::SuriSeedLength {
                len: 2,
                expected: 32
            }
        );
    }

    #[test]
    fn suri_password_with_seed_rejected() {
        assert_eq!(
            Keypair::from_suri(&format!("0x{ALICE_SEED_HEX}///pw")).unwrap_err(),
            KeyError::SuriPasswordWithSeed
        );
    }

    #[test]
    fn invalid_phrase_rejected() {
        // Unknown word.
        assert!(matches!(
            Keypair::from_phrase(
                "bottom drive obey lake curtain smoke basket hold race lonely fit wxyz",
                None
            ),
            Err(KeyError::InvalidPhrase {
                source: bip39::Error::UnknownWord(11)
            })
        ));
        // Bad checksum (last word swapped).
        assert!(matches!(
            Keypair::from_phrase(
                "bottom drive obey lake curtain smoke basket hold race lonely fit bottom",
                None
            ),
            Err(KeyError::InvalidPhrase {
                source: bip39::Error::InvalidChecksum
            })
        ));
        // Through a URI too.
        assert!(matches!(
            Keypair::from_suri("bottom drive//Alice"),
            Err(KeyError::InvalidPhrase {
                source: bip39::Error::BadWordCount(2)
            })
        ));
    }

    #[test]
    fn secret_key_bytes_round_trip() {
        let mini = MiniSecretKey::from_bytes(&seed(ALICE_SEED_HEX)).unwrap();
        let bytes = mini.expand(ExpansionMode::Ed25519).to_bytes();
        let pair = Keypair::from_secret_key_bytes(&bytes).unwrap();
        assert_eq!(pair.hotkey().to_ss58(), ALICE_SS58);
    }

    #[test]
    fn invalid_secret_key_rejected() {
        // A scalar with the high bit set is not canonical.
        let bytes = [0xffu8; SECRET_KEY_LEN];
        assert!(matches!(
            Keypair::from_secret_key_bytes(&bytes),
            Err(KeyError::InvalidSecretKey { .. })
        ));
    }

    #[test]
    fn keypair_debug_hides_secret() {
        let alice = Keypair::dev("alice").unwrap();
        let shown = format!("{alice:?}");
        assert!(shown.contains(ALICE_SS58), "{shown}");
        assert!(
            !shown.contains("nonce") && !shown.contains("SecretKey"),
            "{shown}"
        );
    }

    #[test]
    fn ss58_round_trip() {
        for name in DEV_NAMES {
            let hotkey = Keypair::dev(name).unwrap().hotkey();
            let address = hotkey.to_ss58();
            assert_eq!(Hotkey::from_ss58(&address).unwrap(), hotkey);
            assert_eq!(address.parse::<Hotkey>().unwrap(), hotkey);
            assert_eq!(hotkey.to_string(), address);
        }
        let raw = Hotkey::from_bytes([7u8; 32]);
        assert_eq!(Hotkey::from_ss58(&raw.to_ss58()).unwrap(), raw);
        assert_eq!(
            Hotkey::from_ss58(ALICE_SS58).unwrap().as_bytes(),
            &seed(ALICE_PUBLIC_HEX)
        );
    }

    #[test]
    fn ss58_bad_checksum_rejected() {
        let mut payload = bs58::decode(ALICE_SS58).into_vec().unwrap();
        *payload.last_mut().unwrap() ^= 1;
        let address = bs58::encode(payload).into_string();
        assert_eq!(
            Hotkey::from_ss58(&address).unwrap_err(),
            KeyError::Ss58Checksum { address }
        );
    }

    #[test]
    fn ss58_wrong_prefix_rejected() {
        // Alice's key as a Polkadot (prefix 0) address: valid checksum.
        let address = ss58_with_prefix(0, &seed(ALICE_PUBLIC_HEX));
        assert_eq!(address, "15oF4uVJwmo4TdGW7VfQxNLavjCXviqxT9S1MgbjMNHr6Sp5");
        assert_eq!(
            Hotkey::from_ss58(&address).unwrap_err(),
            KeyError::Ss58Prefix {
                address,
                got: 0,
                expected: 42
            }
        );
    }

    #[test]
    fn ss58_bad_length_rejected() {
        // Truncated by one byte.
        let payload = bs58::decode(ALICE_SS58).into_vec().unwrap();
        let address = bs58::encode(&payload[..34]).into_string();
        assert_eq!(
            Hotkey::from_ss58(&address).unwrap_err(),
            KeyError::Ss58Length {
                address,
                len: 34,
                expected: 35
            }
        );
        assert!(matches!(
            Hotkey::from_ss58(""),
            Err(KeyError::Ss58Length { len: 0, .. })
        ));
    }

    #[test]
    fn ss58_bad_base58_rejected() {
        // '0', 'O', 'I', 'l' are not in the bitcoin alphabet.
        let address = ALICE_SS58.replacen('5', "0", 1);
        assert!(matches!(
            Hotkey::from_ss58(&address).unwrap_err(),
            KeyError::Ss58Base58 {
                source: bs58::decode::Error::InvalidCharacter {
                    character: '0',
                    index: 0
                },
                ..
            }
        ));
    }

    #[test]
    fn ss58_too_long_rejected() {
        let address = "1".repeat(10_000);
        assert_eq!(
            Hotkey::from_ss58(&address).unwrap_err(),
            KeyError::Ss58TooLong {
                chars: 10_000,
                max: SS58_MAX_CHARS
            }
        );
    }

    #[test]
    fn sign_verify_round_trip() {
        let alice = Keypair::dev("alice").unwrap();
        let msg = b"grail window 42";
        let sig = alice.sign(msg);
        verify(&alice.hotkey(), msg, &sig).unwrap();
        // Randomized nonces: a second signature differs and also verifies.
        let sig2 = alice.sign(msg);
        assert_ne!(sig, sig2);
        verify(&alice.hotkey(), msg, &sig2).unwrap();
    }

    #[test]
    fn tampered_message_is_bad_signature() {
        let alice = Keypair::dev("alice").unwrap();
        let sig = alice.sign(b"grail window 42");
        assert_eq!(
            verify(&alice.hotkey(), b"grail window 43", &sig).unwrap_err(),
            KeyError::BadSignature {
                hotkey: alice.hotkey()
            }
        );
    }

    #[test]
    fn tampered_signature_is_bad_signature() {
        let alice = Keypair::dev("alice").unwrap();
        let mut sig = alice.sign(b"msg");
        sig[0] ^= 1;
        assert_eq!(
            verify(&alice.hotkey(), b"msg", &sig).unwrap_err(),
            KeyError::BadSignature {
                hotkey: alice.hotkey()
            }
        );
    }

    #[test]
    fn other_key_is_bad_signature() {
        let alice = Keypair::dev("alice").unwrap();
        let bob = Keypair::dev("bob").unwrap().hotkey();
        let sig = alice.sign(b"msg");
        assert_eq!(
            verify(&bob, b"msg", &sig).unwrap_err(),
            KeyError::BadSignature { hotkey: bob }
        );
    }

    #[test]
    fn unmarked_signature_is_malformed() {
        let alice = Keypair::dev("alice").unwrap();
        let mut sig = alice.sign(b"msg");
        // Clear the schnorrkel marker bit (distinguishes sr25519 from ed25519).
        sig[63] &= 0x7f;
        assert!(matches!(
            verify(&alice.hotkey(), b"msg", &sig).unwrap_err(),
            KeyError::MalformedSignature { hotkey, .. } if hotkey == alice.hotkey()
        ));
    }

    #[test]
    fn invalid_point_is_malformed_public_key() {
        let alice = Keypair::dev("alice").unwrap();
        let sig = alice.sign(b"msg");
        // 0xff.. is not a canonical field element, so not a Ristretto encoding.
        let bogus = Hotkey::from_bytes([0xff; 32]);
        let err = verify(&bogus, b"msg", &sig).unwrap_err();
        assert!(
            matches!(err, KeyError::MalformedPublicKey { hotkey, .. } if hotkey == bogus),
            "{err}"
        );
    }
}
