//! A local drand-compatible beacon: a single signer producing quicknet-style
//! beacons (scheme `bls-unchained-g1-rfc9380`) under a key derived from a
//! devnet seed, served over the drand relay HTTP API.
//!
//! Key: `sk = Scalar::from_bytes_wide(sha512(DEVNET_DRAND_KEY_LABEL || seed))`
//! (a uniform scalar, reduced mod r), public key `pk = sk * G2` (96 bytes
//! compressed). Round `r`'s signature is
//! `sk * hash_to_curve_G1(sha256(u64_be(r)), DEVNET_DRAND_DST)` (48 bytes
//! compressed) and its randomness `sha256(signature)`, exactly what
//! quicknet's nodes produce, so [`grail_core::beacon::verify`] with
//! [`DrandChain::devnet`] and the production
//! [`DrandClient`](crate::drand::DrandClient) accept it with no devnet branch.
//!
//! The seed is public: anyone who knows it can sign any round. A devnet
//! beacon is for local testing only; its chain hash differs from every
//! League of Entropy chain, so a client pinned to quicknet rejects it.
//!
//! HTTP (drand relay API): `GET /{chain_hash}/info` and
//! `GET /{chain_hash}/public/{round|latest}`; a round not yet reached by the
//! clock, an unknown chain hash or path is 404.
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use bls12_381::hash_to_curve::{ExpandMsgXmd, HashToCurve};
use bls12_381::{G1Affine, G1Projective, G2Affine, Scalar};
use grail_core::beacon::{message, randomness_of, Beacon, DrandChain, DEVNET_BEACON_ID};
use serde_json::json;
use sha2::{Digest as _, Sha512};

use super::DevnetError;
use crate::drand::BeaconJson;

/// Domain label of the devnet drand secret key derivation. Changing it
/// changes every devnet public key and chain hash.
pub const DEVNET_DRAND_KEY_LABEL: &[u8] = b"grail/v1/devnet-drand-key";
/// Hash-to-G1 domain separation tag of the RFC 9380 scheme (drand quicknet,
/// drand-verify's `G2PubkeyRfc`). Changing it makes every signature invalid.
pub const DEVNET_DRAND_DST: &[u8] = b"BLS_SIG_BLS12381G1_XMD:SHA-256_SSWU_RO_NUL_";
/// Default seconds between devnet rounds (quicknet's period).
pub const DEFAULT_DRAND_PERIOD_S: u64 = 3;

/// The devnet drand signer and its chain.
#[derive(Clone)]
pub struct DevnetBeacon {
    sk: Scalar,
    chain: DrandChain,
}

impl std::fmt::Debug for DevnetBeacon {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DevnetBeacon")
            .field("chain", &self.chain)
            .finish_non_exhaustive()
    }
}

/// `Scalar::from_bytes_wide(sha512(DEVNET_DRAND_KEY_LABEL || seed))`.
pub fn secret_key(seed: &[u8]) -> Scalar {
    let wide: [u8; 64] = Sha512::new()
        .chain_update(DEVNET_DRAND_KEY_LABEL)
        .chain_update(seed)
        .finalize()
        .into();
    Scalar::from_bytes_wide(&wide)
}

/// The compressed G2 public key of the devnet key derived from `seed`.
pub fn public_key(seed: &[u8]) -> [u8; 96] {
    G2Affine::from(G2Affine::generator() * secret_key(seed)).to_compressed()
}

impl DevnetBeacon {
    /// The signer derived from `seed`, its chain starting at unix time
    /// `genesis_time` with `period` seconds between rounds.
    pub fn from_seed(
        seed: &[u8],
        genesis_time: u64,
        period: u64,
    ) -> Result<DevnetBeacon, DevnetError> {
        let sk = secret_key(seed);
        let pk = G2Affine::from(G2Affine::generator() * sk).to_compressed();
        let chain = DrandChain::devnet(&pk, genesis_time, period).map_err(DevnetError::Beacon)?;
        Ok(DevnetBeacon { sk, chain })
    }

    /// The chain clients pin to verify this beacon.
    pub fn chain(&self) -> &DrandChain {
        &self.chain
    }

    /// The signed beacon of `round` (>= 1), whether or not its time has come.
    pub fn sign(&self, round: u64) -> Beacon {
        let msg = message(round, &[]);
        let h = <G1Projective as HashToCurve<ExpandMsgXmd<sha2_v09::Sha256>>>::hash_to_curve(
            msg,
            DEVNET_DRAND_DST,
        );
        let signature = G1Affine::from(h * self.sk).to_compressed().to_vec();
        Beacon {
            round,
            randomness: randomness_of(&signature),
            signature,
            previous_signature: None,
        }
    }

    /// The latest round published at unix time `now` (0 before genesis).
    pub fn latest_round(&self, now: u64) -> u64 {
        self.chain.schedule().round_at(now)
    }

    /// drand's `/info` JSON of this chain.
    pub fn info_json(&self) -> serde_json::Value {
        json!({
            "public_key": hex::encode(self.chain.public_key()),
            "period": self.chain.period(),
            "genesis_time": self.chain.genesis_time(),
            "hash": self.chain.hash_hex(),
            "groupHash": hex::encode(self.chain.genesis_seed()),
            "schemeID": self.chain.scheme().id(),
            "metadata": {"beaconID": DEVNET_BEACON_ID},
        })
    }

    /// The relay API over this beacon, on the system clock.
    pub fn router(self: Arc<Self>) -> Router {
        Router::new()
            .route("/{chain_hash}/info", get(info))
            .route("/{chain_hash}/public/{round}", get(public))
            .with_state(self)
    }
}

fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

fn not_found(what: String) -> Response {
    (StatusCode::NOT_FOUND, what).into_response()
}

async fn info(State(b): State<Arc<DevnetBeacon>>, Path(hash): Path<String>) -> Response {
    if hash != b.chain.hash_hex() {
        return not_found(format!("unknown chain {hash}"));
    }
    Json(b.info_json()).into_response()
}

async fn public(
    State(b): State<Arc<DevnetBeacon>>,
    Path((hash, round)): Path<(String, String)>,
) -> Response {
    if hash != b.chain.hash_hex() {
        return not_found(format!("unknown chain {hash}"));
    }
    let latest = b.latest_round(unix_now());
    let round = if round == "latest" {
        latest
    } else {
        match round.parse::<u64>() {
            Ok(r) => r,
            Err(_) => return (StatusCode::BAD_REQUEST, "invalid round").into_response(),
        }
    };
    if round == 0 || round > latest {
        return not_found(format!("round {round} not yet published (latest {latest})"));
    }
    Json(BeaconJson::from_beacon(&b.sign(round))).into_response()
}
