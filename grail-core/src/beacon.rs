//! drand beacons: the pinned chains and beacon verification (PROTOCOL.md §4).
//!
//! A beacon's randomness feeds window and challenge randomness, so a beacon is
//! used only as a [`VerifiedBeacon`], which only [`verify`] constructs:
//!
//! 1. `round >= 1`;
//! 2. the signature has the chain's signature length and is a valid curve
//!    point in the prime-order subgroup;
//! 3. chained schemes carry the previous signature (for round 1, the chain's
//!    genesis seed); unchained schemes carry none;
//! 4. the BLS signature verifies under the pinned public key over
//!    `sha256(previous_signature || u64_be(round))` (empty previous signature
//!    for unchained schemes);
//! 5. `randomness == sha256(signature)`, recomputed here.
//!
//! There is no fallback: a beacon that fails any check is rejected with the
//! [`BeaconError`] variant naming the check. This module is pure (no I/O);
//! fetching beacons from relays lives in `grail_chain::drand`.
#![forbid(unsafe_code)]

use drand_verify::{G1Pubkey, G2PubkeyRfc, Pubkey};
use sha2::{Digest as _, Sha256};

use crate::window::DrandSchedule;

/// quicknet's chain hash. Changing it (or any `QUICKNET_*` constant) points
/// every validator at a different randomness source: consensus breaks.
pub const QUICKNET_CHAIN_HASH: &str =
    "52db9ba70e0cc0f6eaf7803dd07447a1f5477735fd3f661792ba94600c84e971";
/// quicknet's group public key (compressed G2, 96 bytes).
pub const QUICKNET_PUBLIC_KEY: &str = "83cf0f2896adee7eb8b5f01fcad3912212c437e0073e911fb90022d3e760183c8c4b450b6a0a6c3ac6a5776a2d1064510d1fec758c921cc22b0e17e63aaf4bcb5ed66304de9cf809bd274ca73bab4af5a6e9c76a4bc09e76eae8991ef5ece45a";
/// quicknet's genesis time (unix seconds); with the period it maps chain
/// timestamps to rounds, so changing it changes every derived round.
pub const QUICKNET_GENESIS_TIME: u64 = 1_692_803_367;
/// quicknet's period in seconds.
pub const QUICKNET_PERIOD: u64 = 3;
/// quicknet's genesis seed (the group hash that enters the chain hash).
pub const QUICKNET_GENESIS_SEED: &str =
    "f477d5c89f21a17c863a7f937c6a6d15859414d2be09cd448d4279af331c5d3e";

/// The default (League of Entropy mainnet) chain hash. Changing any
/// `DEFAULT_*` constant breaks verification of default-chain beacons.
pub const DEFAULT_CHAIN_HASH: &str =
    "8990e7a9aaed2ffed73dbd7092123d6f289930540d7651336225dc172e51b2ce";
/// The default chain's group public key (compressed G1, 48 bytes).
pub const DEFAULT_PUBLIC_KEY: &str = "868f005eb8e6e4ca0a47c8a77ceaa5309a47978a7c71bc5cce96366b5d7a569937c529eeda66c7293784a9402801af31";
/// The default chain's genesis time (unix seconds).
pub const DEFAULT_GENESIS_TIME: u64 = 1_595_431_050;
/// The default chain's period in seconds.
pub const DEFAULT_PERIOD: u64 = 30;
/// The default chain's genesis seed: round 1's previous signature.
pub const DEFAULT_GENESIS_SEED: &str =
    "176f93498eac9ca337150b46d21dd58673ea4e3581185f869672e59fa4cb390a";

/// drand's beacon id of the default chain: the one id that does not enter the
/// chain hash.
pub const DEFAULT_BEACON_ID: &str = "default";
/// The beacon id (and chain name) of a local devnet chain.
pub const DEVNET_BEACON_ID: &str = "devnet";
/// Label hashed with a devnet public key to make that chain's genesis seed.
pub const DEVNET_GENESIS_SEED_LABEL: &[u8] = b"grail/v1/drand-devnet-genesis-seed";

/// A drand signature scheme (drand's scheme id).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Scheme {
    /// `pedersen-bls-chained`: public key on G1 (48 bytes), signatures on G2
    /// (96 bytes), message includes the previous signature.
    PedersenBlsChained,
    /// `bls-unchained-g1-rfc9380`: public key on G2 (96 bytes), signatures on
    /// G1 (48 bytes, RFC 9380 hash-to-curve), message is the round only.
    BlsUnchainedG1Rfc9380,
}

impl Scheme {
    /// drand's scheme id, as served in a relay's `/info`.
    pub fn id(self) -> &'static str {
        match self {
            Scheme::PedersenBlsChained => "pedersen-bls-chained",
            Scheme::BlsUnchainedG1Rfc9380 => "bls-unchained-g1-rfc9380",
        }
    }

    /// The scheme with drand id `id`, if it is one grail supports.
    pub fn from_id(id: &str) -> Option<Scheme> {
        [Scheme::PedersenBlsChained, Scheme::BlsUnchainedG1Rfc9380]
            .into_iter()
            .find(|s| s.id() == id)
    }

    /// Whether each beacon's message includes the previous signature.
    pub fn is_chained(self) -> bool {
        matches!(self, Scheme::PedersenBlsChained)
    }

    /// Length of a compressed signature in bytes.
    pub fn signature_len(self) -> usize {
        match self {
            Scheme::PedersenBlsChained => 96,
            Scheme::BlsUnchainedG1Rfc9380 => 48,
        }
    }

    /// Length of a compressed public key in bytes.
    pub fn public_key_len(self) -> usize {
        match self {
            Scheme::PedersenBlsChained => 48,
            Scheme::BlsUnchainedG1Rfc9380 => 96,
        }
    }
}

/// drand's chain hash: `sha256(u32_be(period) || i64_be(genesis_time) ||
/// public_key || genesis_seed || beacon_id)`, where `beacon_id` is omitted for
/// the default beacon (drand's `Info.Hash`).
pub fn chain_hash(
    period: u64,
    genesis_time: u64,
    public_key: &[u8],
    genesis_seed: &[u8],
    beacon_id: &str,
) -> [u8; 32] {
    let mut h = Sha256::new();
    h.update((period as u32).to_be_bytes());
    h.update((genesis_time as i64).to_be_bytes());
    h.update(public_key);
    h.update(genesis_seed);
    if beacon_id != DEFAULT_BEACON_ID {
        h.update(beacon_id.as_bytes());
    }
    h.finalize().into()
}

/// The public parameters of one drand chain. Fields are private so that a
/// chain's hash always matches its parameters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DrandChain {
    name: String,
    hash: [u8; 32],
    public_key: Vec<u8>,
    genesis_time: u64,
    period: u64,
    scheme: Scheme,
    genesis_seed: Vec<u8>,
}

fn pinned_hex(s: &str) -> Vec<u8> {
    hex::decode(s).expect("pinned drand constant is valid hex")
}

impl DrandChain {
    /// quicknet: unchained, 3 s period, signatures on G1 (RFC 9380).
    pub fn quicknet() -> DrandChain {
        DrandChain {
            name: "quicknet".into(),
            hash: pinned_hex(QUICKNET_CHAIN_HASH)
                .try_into()
                .expect("32 bytes"),
            public_key: pinned_hex(QUICKNET_PUBLIC_KEY),
            genesis_time: QUICKNET_GENESIS_TIME,
            period: QUICKNET_PERIOD,
            scheme: Scheme::BlsUnchainedG1Rfc9380,
            genesis_seed: pinned_hex(QUICKNET_GENESIS_SEED),
        }
    }

    /// The default (League of Entropy mainnet) chain: chained, 30 s period.
    pub fn default_chain() -> DrandChain {
        DrandChain {
            name: "default".into(),
            hash: pinned_hex(DEFAULT_CHAIN_HASH).try_into().expect("32 bytes"),
            public_key: pinned_hex(DEFAULT_PUBLIC_KEY),
            genesis_time: DEFAULT_GENESIS_TIME,
            period: DEFAULT_PERIOD,
            scheme: Scheme::PedersenBlsChained,
            genesis_seed: pinned_hex(DEFAULT_GENESIS_SEED),
        }
    }

    /// A pinned chain by name: `quicknet` or `default`.
    pub fn by_name(name: &str) -> Option<DrandChain> {
        match name {
            "quicknet" => Some(DrandChain::quicknet()),
            "default" => Some(DrandChain::default_chain()),
            _ => None,
        }
    }

    /// A local devnet chain signing quicknet-style (unchained, signatures on
    /// G1, RFC 9380) under `public_key` (compressed G2, 96 bytes). Its genesis
    /// seed is `sha256(DEVNET_GENESIS_SEED_LABEL || public_key)` and its hash
    /// is [`chain_hash`] with beacon id [`DEVNET_BEACON_ID`].
    pub fn devnet(
        public_key: &[u8],
        genesis_time: u64,
        period: u64,
    ) -> Result<DrandChain, BeaconError> {
        let scheme = Scheme::BlsUnchainedG1Rfc9380;
        if public_key.len() != scheme.public_key_len()
            || G2PubkeyRfc::from_variable(public_key).is_err()
        {
            return Err(BeaconError::InvalidPublicKey {
                chain: DEVNET_BEACON_ID.into(),
                public_key: hex::encode(public_key),
            });
        }
        if period == 0 {
            return Err(BeaconError::ZeroPeriod {
                chain: DEVNET_BEACON_ID.into(),
            });
        }
        let genesis_seed: Vec<u8> = Sha256::new()
            .chain_update(DEVNET_GENESIS_SEED_LABEL)
            .chain_update(public_key)
            .finalize()
            .to_vec();
        Ok(DrandChain {
            name: DEVNET_BEACON_ID.into(),
            hash: chain_hash(
                period,
                genesis_time,
                public_key,
                &genesis_seed,
                DEVNET_BEACON_ID,
            ),
            public_key: public_key.to_vec(),
            genesis_time,
            period,
            scheme,
            genesis_seed,
        })
    }

    /// The chain's name (its drand beacon id).
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The chain hash (what relays put in the URL path).
    pub fn hash(&self) -> &[u8; 32] {
        &self.hash
    }

    /// The chain hash in lowercase hex.
    pub fn hash_hex(&self) -> String {
        hex::encode(self.hash)
    }

    /// The group public key (compressed).
    pub fn public_key(&self) -> &[u8] {
        &self.public_key
    }

    /// Unix time of round 1.
    pub fn genesis_time(&self) -> u64 {
        self.genesis_time
    }

    /// Seconds between rounds.
    pub fn period(&self) -> u64 {
        self.period
    }

    /// The signature scheme.
    pub fn scheme(&self) -> Scheme {
        self.scheme
    }

    /// The genesis seed (group hash); round 1's previous signature on
    /// chained schemes.
    pub fn genesis_seed(&self) -> &[u8] {
        &self.genesis_seed
    }

    /// Round timing of this chain.
    pub fn schedule(&self) -> DrandSchedule {
        DrandSchedule {
            genesis_time: self.genesis_time,
            period: self.period,
        }
    }
}

/// A beacon as served by a relay, not yet verified.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Beacon {
    pub round: u64,
    pub signature: Vec<u8>,
    /// Present on chained schemes only.
    pub previous_signature: Option<Vec<u8>>,
    pub randomness: [u8; 32],
}

/// A beacon whose signature and randomness were checked against a chain by
/// [`verify`]; nothing else constructs one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifiedBeacon {
    chain_hash: [u8; 32],
    beacon: Beacon,
}

impl VerifiedBeacon {
    /// Hash of the chain the beacon was verified against.
    pub fn chain_hash(&self) -> &[u8; 32] {
        &self.chain_hash
    }

    pub fn round(&self) -> u64 {
        self.beacon.round
    }

    /// `sha256(signature)`: the randomness the protocol uses.
    pub fn randomness(&self) -> &[u8; 32] {
        &self.beacon.randomness
    }

    pub fn signature(&self) -> &[u8] {
        &self.beacon.signature
    }

    pub fn previous_signature(&self) -> Option<&[u8]> {
        self.beacon.previous_signature.as_deref()
    }

    /// The verified beacon's fields (a copy can be re-verified later).
    pub fn beacon(&self) -> &Beacon {
        &self.beacon
    }
}

/// `sha256(signature)`: drand's randomness of a beacon.
pub fn randomness_of(signature: &[u8]) -> [u8; 32] {
    Sha256::digest(signature).into()
}

/// drand's signed message: `sha256(previous_signature || u64_be(round))`.
pub fn message(round: u64, previous_signature: &[u8]) -> [u8; 32] {
    Sha256::new()
        .chain_update(previous_signature)
        .chain_update(round.to_be_bytes())
        .finalize()
        .into()
}

/// Why a beacon, or a relay's chain info, was rejected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum BeaconError {
    /// drand rounds start at 1.
    #[error("{chain}: round 0 does not exist (rounds start at 1)")]
    RoundZero { chain: String },
    /// The signature is not the chain's signature length.
    #[error("{chain} round {round}: signature is {got} bytes, the chain's scheme {scheme} signs with {want}")]
    SignatureLength {
        chain: String,
        round: u64,
        scheme: &'static str,
        got: usize,
        want: usize,
    },
    /// The signature bytes are not a compressed point of the prime-order subgroup.
    #[error("{chain} round {round}: signature {signature} is not a valid curve point: {reason}")]
    SignaturePoint {
        chain: String,
        round: u64,
        signature: String,
        reason: String,
    },
    /// A chained beacon without its previous signature.
    #[error("{chain} round {round}: chained beacon has no previous_signature")]
    MissingPreviousSignature { chain: String, round: u64 },
    /// An unchained beacon carrying a previous signature.
    #[error(
        "{chain} round {round}: unchained beacon carries a previous_signature {previous_signature}"
    )]
    UnexpectedPreviousSignature {
        chain: String,
        round: u64,
        previous_signature: String,
    },
    /// A chained beacon's previous signature has the wrong length.
    #[error("{chain} round {round}: previous_signature is {got} bytes, expected {want}")]
    PreviousSignatureLength {
        chain: String,
        round: u64,
        got: usize,
        want: usize,
    },
    /// Round 1 of a chained beacon must chain to the genesis seed.
    #[error("{chain} round 1: previous_signature {got} is not the chain's genesis seed {want}")]
    GenesisSeedMismatch {
        chain: String,
        got: String,
        want: String,
    },
    /// The BLS signature does not verify under the chain's public key for
    /// this round (and previous signature).
    #[error("{chain} round {round}: BLS signature {signature} does not verify under the chain's public key")]
    BadSignature {
        chain: String,
        round: u64,
        signature: String,
    },
    /// The stated randomness is not sha256(signature).
    #[error("{chain} round {round}: randomness {got} is not sha256(signature) = {want}")]
    RandomnessMismatch {
        chain: String,
        round: u64,
        got: String,
        want: String,
    },
    /// A public key that is not a valid point of the scheme's key group.
    #[error("{chain}: public key {public_key} is not a valid point")]
    InvalidPublicKey { chain: String, public_key: String },
    /// A chain with period 0.
    #[error("{chain}: period 0")]
    ZeroPeriod { chain: String },
    /// A relay's `/info` names another chain hash.
    #[error("{chain}: relay info has chain hash {got}, pinned {want}")]
    InfoChainHash {
        chain: String,
        got: String,
        want: String,
    },
    /// A relay's `/info` has another public key.
    #[error("{chain}: relay info has public key {got}, pinned {want}")]
    InfoPublicKey {
        chain: String,
        got: String,
        want: String,
    },
    /// A relay's `/info` has another period.
    #[error("{chain}: relay info has period {got} s, pinned {want} s")]
    InfoPeriod { chain: String, got: u64, want: u64 },
    /// A relay's `/info` has another genesis time.
    #[error("{chain}: relay info has genesis time {got}, pinned {want}")]
    InfoGenesisTime { chain: String, got: u64, want: u64 },
    /// A relay's `/info` has another scheme.
    #[error("{chain}: relay info has scheme {got:?}, pinned {want:?}")]
    InfoScheme {
        chain: String,
        got: String,
        want: &'static str,
    },
    /// A relay's `/info` has another genesis seed (group hash).
    #[error("{chain}: relay info has genesis seed {got}, pinned {want}")]
    InfoGenesisSeed {
        chain: String,
        got: String,
        want: String,
    },
}

/// Verify `beacon` against `chain` (checks in the order of the module docs).
pub fn verify(chain: &DrandChain, beacon: &Beacon) -> Result<VerifiedBeacon, BeaconError> {
    let name = || chain.name.clone();
    let round = beacon.round;
    if round == 0 {
        return Err(BeaconError::RoundZero { chain: name() });
    }
    let scheme = chain.scheme;
    if beacon.signature.len() != scheme.signature_len() {
        return Err(BeaconError::SignatureLength {
            chain: name(),
            round,
            scheme: scheme.id(),
            got: beacon.signature.len(),
            want: scheme.signature_len(),
        });
    }
    let previous: &[u8] = if scheme.is_chained() {
        let Some(previous) = beacon.previous_signature.as_deref() else {
            return Err(BeaconError::MissingPreviousSignature {
                chain: name(),
                round,
            });
        };
        if round == 1 {
            if previous != chain.genesis_seed.as_slice() {
                return Err(BeaconError::GenesisSeedMismatch {
                    chain: name(),
                    got: hex::encode(previous),
                    want: hex::encode(&chain.genesis_seed),
                });
            }
        } else if previous.len() != scheme.signature_len() {
            return Err(BeaconError::PreviousSignatureLength {
                chain: name(),
                round,
                got: previous.len(),
                want: scheme.signature_len(),
            });
        }
        previous
    } else {
        match beacon.previous_signature.as_deref() {
            None | Some([]) => &[],
            Some(p) => {
                return Err(BeaconError::UnexpectedPreviousSignature {
                    chain: name(),
                    round,
                    previous_signature: hex::encode(p),
                })
            }
        }
    };
    let ok = match scheme {
        Scheme::PedersenBlsChained => bls_verify::<G1Pubkey>(chain, round, previous, beacon)?,
        Scheme::BlsUnchainedG1Rfc9380 => bls_verify::<G2PubkeyRfc>(chain, round, previous, beacon)?,
    };
    if !ok {
        return Err(BeaconError::BadSignature {
            chain: name(),
            round,
            signature: hex::encode(&beacon.signature),
        });
    }
    let want = randomness_of(&beacon.signature);
    if beacon.randomness != want {
        return Err(BeaconError::RandomnessMismatch {
            chain: name(),
            round,
            got: hex::encode(beacon.randomness),
            want: hex::encode(want),
        });
    }
    Ok(VerifiedBeacon {
        chain_hash: chain.hash,
        beacon: beacon.clone(),
    })
}

fn bls_verify<P: Pubkey>(
    chain: &DrandChain,
    round: u64,
    previous: &[u8],
    beacon: &Beacon,
) -> Result<bool, BeaconError> {
    let key = P::from_variable(&chain.public_key).map_err(|_| BeaconError::InvalidPublicKey {
        chain: chain.name.clone(),
        public_key: hex::encode(&chain.public_key),
    })?;
    key.verify(round, previous, &beacon.signature)
        .map_err(|e| BeaconError::SignaturePoint {
            chain: chain.name.clone(),
            round,
            signature: hex::encode(&beacon.signature),
            reason: e.to_string(),
        })
}

/// The values of a relay's `GET /{chain_hash}/info`, decoded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChainInfo {
    pub hash: Vec<u8>,
    pub public_key: Vec<u8>,
    pub period: u64,
    pub genesis_time: u64,
    pub scheme: String,
    /// `genesis_seed` / `groupHash`, when the relay serves it.
    pub genesis_seed: Option<Vec<u8>>,
}

/// Check a relay's `/info` values against the pinned `chain`.
pub fn check_info(chain: &DrandChain, info: &ChainInfo) -> Result<(), BeaconError> {
    let name = || chain.name.clone();
    if info.hash != chain.hash {
        return Err(BeaconError::InfoChainHash {
            chain: name(),
            got: hex::encode(&info.hash),
            want: chain.hash_hex(),
        });
    }
    if info.public_key != chain.public_key {
        return Err(BeaconError::InfoPublicKey {
            chain: name(),
            got: hex::encode(&info.public_key),
            want: hex::encode(&chain.public_key),
        });
    }
    if info.period != chain.period {
        return Err(BeaconError::InfoPeriod {
            chain: name(),
            got: info.period,
            want: chain.period,
        });
    }
    if info.genesis_time != chain.genesis_time {
        return Err(BeaconError::InfoGenesisTime {
            chain: name(),
            got: info.genesis_time,
            want: chain.genesis_time,
        });
    }
    if info.scheme != chain.scheme.id() {
        return Err(BeaconError::InfoScheme {
            chain: name(),
            got: info.scheme.clone(),
            want: chain.scheme.id(),
        });
    }
    if let Some(seed) = &info.genesis_seed {
        if *seed != chain.genesis_seed {
            return Err(BeaconError::InfoGenesisSeed {
                chain: name(),
                got: hex::encode(seed),
                want: hex::encode(&chain.genesis_seed),
            });
        }
    }
    Ok(())
}
