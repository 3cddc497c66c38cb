//! drand beacon verification against real recorded beacons
//! (tests/fixtures/drand/beacons.json), and one tampered case per check.
use grail_core::beacon::{
    chain_hash, check_info, randomness_of, verify, Beacon, BeaconError, ChainInfo, DrandChain,
    Scheme,
};
use serde_json::Value;

fn fixture() -> Value {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../tests/fixtures/drand/beacons.json");
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

fn hex_field(v: &Value, name: &str) -> Vec<u8> {
    hex::decode(v[name].as_str().unwrap()).unwrap()
}

fn beacons(chain: &str) -> Vec<Beacon> {
    fixture()["beacons"][chain]
        .as_array()
        .unwrap()
        .iter()
        .map(|b| Beacon {
            round: b["round"].as_u64().unwrap(),
            signature: hex_field(b, "signature"),
            previous_signature: b
                .get("previous_signature")
                .map(|_| hex_field(b, "previous_signature")),
            randomness: hex_field(b, "randomness").try_into().unwrap(),
        })
        .collect()
}

fn chains() -> [(DrandChain, Vec<Beacon>); 2] {
    [
        (DrandChain::quicknet(), beacons("quicknet")),
        (DrandChain::default_chain(), beacons("default")),
    ]
}

#[test]
fn pinned_chains_match_the_fixture_and_their_hash() {
    let f = fixture();
    for chain in [DrandChain::quicknet(), DrandChain::default_chain()] {
        let c = &f["chains"][chain.name()];
        assert_eq!(chain.hash_hex(), c["hash"].as_str().unwrap());
        assert_eq!(chain.public_key(), hex_field(c, "public_key"));
        assert_eq!(chain.genesis_seed(), hex_field(c, "genesis_seed"));
        assert_eq!(chain.genesis_time(), c["genesis_time"].as_u64().unwrap());
        assert_eq!(chain.period(), c["period"].as_u64().unwrap());
        assert_eq!(chain.scheme().id(), c["scheme"].as_str().unwrap());
        assert_eq!(chain.scheme().public_key_len(), chain.public_key().len());
        assert_eq!(
            &chain_hash(
                chain.period(),
                chain.genesis_time(),
                chain.public_key(),
                chain.genesis_seed(),
                c["beacon_id"].as_str().unwrap(),
            ),
            chain.hash()
        );
        assert_eq!(DrandChain::by_name(chain.name()).as_ref(), Some(&chain));
    }
    assert_eq!(
        Scheme::from_id("bls-unchained-g1-rfc9380"),
        Some(Scheme::BlsUnchainedG1Rfc9380)
    );
    // fastnet's scheme is not supported
    assert_eq!(Scheme::from_id("bls-unchained-on-g1"), None);
}

#[test]
fn quicknet_round_1000_known_answer() {
    // round 1000 of quicknet was published at 2023-08-23 15:59:24 UTC
    let s = DrandChain::quicknet().schedule();
    let t = 1_692_806_364;
    assert_eq!(s.time_of(1000), t);
    assert_eq!(s.round_at(t), 1000);
    assert_eq!(s.round_at(t - 1), 999);
    assert_eq!(s.round_at(t + 2), 1000);
    assert_eq!(
        DrandChain::default_chain().schedule().time_of(1),
        1_595_431_050
    );
}

#[test]
fn every_fixture_beacon_verifies() {
    for (chain, list) in chains() {
        assert_eq!(list.len(), 5);
        for b in &list {
            let v = verify(&chain, b).unwrap_or_else(|e| panic!("{e}"));
            assert_eq!(v.round(), b.round);
            assert_eq!(v.randomness(), &randomness_of(&b.signature));
            assert_eq!(v.chain_hash(), chain.hash());
            assert_eq!(v.beacon(), b);
        }
    }
}

#[test]
fn one_flipped_signature_bit_is_rejected() {
    for (chain, list) in chains() {
        for b in &list {
            // last bit of x: almost never a subgroup point any more
            let mut t = b.clone();
            *t.signature.last_mut().unwrap() ^= 1;
            assert!(
                matches!(
                    verify(&chain, &t),
                    Err(BeaconError::SignaturePoint { .. } | BeaconError::BadSignature { .. })
                ),
                "{} round {}",
                chain.name(),
                b.round
            );
            // the sign bit of the compressed point: a valid point (-sigma), a bad signature
            let mut t = b.clone();
            t.signature[0] ^= 0x20;
            assert!(
                matches!(verify(&chain, &t), Err(BeaconError::BadSignature { round, .. }) if round == b.round),
                "{} round {}",
                chain.name(),
                b.round
            );
        }
    }
}

#[test]
fn flipped_x_bit_of_quicknet_round_1_is_not_a_point() {
    let b = &beacons("quicknet")[0];
    let mut t = b.clone();
    *t.signature.last_mut().unwrap() ^= 1;
    let e = verify(&DrandChain::quicknet(), &t).unwrap_err();
    assert!(
        matches!(e, BeaconError::SignaturePoint { round: 1, .. }),
        "{e:?}"
    );
}

#[test]
fn wrong_round_is_rejected() {
    for (chain, list) in chains() {
        for b in &list {
            let mut t = b.clone();
            t.round += 1;
            let e = verify(&chain, &t).unwrap_err();
            if chain.scheme().is_chained() && b.round == 1 {
                // the genesis seed is no round-2 previous signature
                assert!(
                    matches!(
                        e,
                        BeaconError::PreviousSignatureLength {
                            round: 2,
                            got: 32,
                            want: 96,
                            ..
                        }
                    ),
                    "{e:?}"
                );
            } else {
                assert!(
                    matches!(e, BeaconError::BadSignature { round, .. } if round == b.round + 1),
                    "{e:?}"
                );
            }
        }
        let mut t = list[0].clone();
        t.round = 0;
        assert!(matches!(
            verify(&chain, &t),
            Err(BeaconError::RoundZero { .. })
        ));
    }
}

#[test]
fn wrong_previous_signature_is_rejected() {
    let chain = DrandChain::default_chain();
    let list = beacons("default");
    for b in &list {
        let mut t = b.clone();
        t.previous_signature.as_mut().unwrap()[5] ^= 1;
        let e = verify(&chain, &t).unwrap_err();
        if b.round == 1 {
            assert!(
                matches!(e, BeaconError::GenesisSeedMismatch { .. }),
                "{e:?}"
            );
        } else {
            assert!(matches!(e, BeaconError::BadSignature { .. }), "{e:?}");
        }
        let mut t = b.clone();
        t.previous_signature = None;
        assert!(matches!(
            verify(&chain, &t),
            Err(BeaconError::MissingPreviousSignature { round, .. }) if round == b.round
        ));
        // another round's (valid) previous signature
        let mut t = b.clone();
        t.previous_signature = Some(list[4].signature.clone());
        assert!(verify(&chain, &t).is_err());
    }
    // unchained: a previous signature must be absent (or empty)
    let q = DrandChain::quicknet();
    let mut t = beacons("quicknet")[2].clone();
    t.previous_signature = Some(vec![]);
    verify(&q, &t).unwrap();
    t.previous_signature = Some(list[1].signature.clone());
    assert!(matches!(
        verify(&q, &t),
        Err(BeaconError::UnexpectedPreviousSignature { round: 3, .. })
    ));
}

#[test]
fn beacon_of_another_chain_is_rejected() {
    let q = DrandChain::quicknet();
    let d = DrandChain::default_chain();
    for b in beacons("quicknet") {
        let e = verify(&d, &b).unwrap_err();
        assert!(
            matches!(e, BeaconError::SignatureLength { got: 48, want: 96, ref chain, .. } if chain == "default"),
            "{e:?}"
        );
    }
    for b in beacons("default") {
        let e = verify(&q, &b).unwrap_err();
        assert!(
            matches!(e, BeaconError::SignatureLength { got: 96, want: 48, ref chain, .. } if chain == "quicknet"),
            "{e:?}"
        );
    }
    // same scheme, another key: a devnet chain whose key is the quicknet key
    // is a different chain, but the signatures still only verify under that key
    let devnet = DrandChain::devnet(q.public_key(), q.genesis_time(), q.period()).unwrap();
    assert_ne!(devnet.hash(), q.hash());
    verify(&devnet, &beacons("quicknet")[0]).unwrap();
    assert!(matches!(
        DrandChain::devnet(&[0u8; 96], 0, 3),
        Err(BeaconError::InvalidPublicKey { .. })
    ));
    assert!(matches!(
        DrandChain::devnet(d.public_key(), 0, 3),
        Err(BeaconError::InvalidPublicKey { .. })
    ));
}

#[test]
fn wrong_randomness_is_rejected() {
    for (chain, list) in chains() {
        for b in &list {
            let mut t = b.clone();
            t.randomness[31] ^= 0x80;
            let e = verify(&chain, &t).unwrap_err();
            assert!(
                matches!(e, BeaconError::RandomnessMismatch { round, ref want, .. }
                    if round == b.round && *want == hex::encode(b.randomness)),
                "{e:?}"
            );
        }
    }
}

#[test]
fn wrong_signature_length_is_rejected() {
    let mut t = beacons("quicknet")[0].clone();
    t.signature.pop();
    assert!(matches!(
        verify(&DrandChain::quicknet(), &t),
        Err(BeaconError::SignatureLength {
            got: 47,
            want: 48,
            ..
        })
    ));
    let mut t = beacons("default")[3].clone();
    t.previous_signature.as_mut().unwrap().push(0);
    assert!(matches!(
        verify(&DrandChain::default_chain(), &t),
        Err(BeaconError::PreviousSignatureLength { got: 97, .. })
    ));
}

fn info_of(chain: &DrandChain) -> ChainInfo {
    ChainInfo {
        hash: chain.hash().to_vec(),
        public_key: chain.public_key().to_vec(),
        period: chain.period(),
        genesis_time: chain.genesis_time(),
        scheme: chain.scheme().id().into(),
        genesis_seed: Some(chain.genesis_seed().to_vec()),
    }
}

#[test]
fn relay_info_is_checked_against_the_pinned_chain() {
    let q = DrandChain::quicknet();
    let d = DrandChain::default_chain();
    check_info(&q, &info_of(&q)).unwrap();
    check_info(&d, &info_of(&d)).unwrap();
    check_info(
        &q,
        &ChainInfo {
            genesis_seed: None,
            ..info_of(&q)
        },
    )
    .unwrap();
    assert!(matches!(
        check_info(&q, &info_of(&d)),
        Err(BeaconError::InfoChainHash { .. })
    ));
    let mut i = info_of(&q);
    i.public_key[10] ^= 1;
    assert!(matches!(
        check_info(&q, &i),
        Err(BeaconError::InfoPublicKey { .. })
    ));
    let i = ChainInfo {
        period: 30,
        ..info_of(&q)
    };
    assert!(matches!(
        check_info(&q, &i),
        Err(BeaconError::InfoPeriod {
            got: 30,
            want: 3,
            ..
        })
    ));
    let i = ChainInfo {
        genesis_time: 1,
        ..info_of(&q)
    };
    assert!(matches!(
        check_info(&q, &i),
        Err(BeaconError::InfoGenesisTime { got: 1, .. })
    ));
    let i = ChainInfo {
        scheme: "bls-unchained-on-g1".into(),
        ..info_of(&q)
    };
    assert!(matches!(
        check_info(&q, &i),
        Err(BeaconError::InfoScheme { .. })
    ));
    let i = ChainInfo {
        genesis_seed: Some(vec![1; 32]),
        ..info_of(&q)
    };
    assert!(matches!(
        check_info(&q, &i),
        Err(BeaconError::InfoGenesisSeed { .. })
    ));
}

#[test]
fn errors_name_the_chain_and_round() {
    let mut t = beacons("quicknet")[4].clone();
    t.randomness = [0; 32];
    let msg = verify(&DrandChain::quicknet(), &t).unwrap_err().to_string();
    assert!(msg.contains("quicknet round 1000"), "{msg}");
}
