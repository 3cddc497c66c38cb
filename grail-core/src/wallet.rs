//! btcli hotkey files: `<wallet.path>/<wallet.name>/hotkeys/<wallet.hotkey>`.
//!
//! The one module of this crate (besides `tensors`) that touches the file
//! system. It reads nothing from the environment: callers resolve `~` by
//! passing the home directory to [`expand_home`].
//!
//! # File format
//!
//! An unencrypted hotkey file is a JSON object written by `bittensor-wallet`
//! (`opentensor/btwallet`, `keyfile.rs::serialized_keypair_to_keyfile_data`),
//! every field optional:
//!
//! | field          | value                                                        |
//! |----------------|--------------------------------------------------------------|
//! | `secretPhrase` | BIP39 mnemonic                                               |
//! | `secretSeed`   | `0x` + 32-byte mini secret                                   |
//! | `privateKey`   | `0x` + 64 bytes: schnorrkel `SecretKey::to_bytes()`          |
//! | `publicKey`    | `0x` + 32-byte public key                                    |
//! | `accountId`    | same as `publicKey`                                          |
//! | `ss58Address`  | SS58 (prefix 42) of the public key                           |
//!
//! `privateKey` is `sp_core::sr25519::Pair::to_raw_vec()`, which is
//! `self.0.secret.to_bytes()`: the canonical 32-byte scalar followed by the
//! 32-byte nonce seed, *not* `to_ed25519_bytes()` (scalar times the cofactor).
//! btwallet reads it back with `Pair::from_seed_slice`, whose 64-byte branch
//! is `SecretKey::from_bytes`; the older Python stack (py-sr25519-bindings
//! `pair_from_seed`) also returned `kp.secret.to_bytes()`. Only btwallet's
//! import of polkadot-js JSON uses the ed25519 form, and it converts to
//! `to_bytes()` before anything is written.
//!
//! Files written by the older Python wallet carry `null` for absent fields;
//! `null` is read as absent. Hex values are accepted with or without the `0x`
//! prefix, as btwallet's reader does.
//!
//! # Rule
//!
//! The key comes from `secretSeed` if present, else `secretPhrase`, else
//! `privateKey`. Every other field that is present must agree with it: the
//! remaining secret fields must derive the same public key, and `publicKey`,
//! `accountId`, `ss58Address` must equal it. Any disagreement is an error
//! naming the file and the field; nothing falls back to another field.
//!
//! Encrypted files (`$NACL`, `$ANSIBLE_VAULT`, legacy Fernet `gAAAAA`) are
//! rejected: grail needs an unencrypted hotkey file.
#![forbid(unsafe_code)]

use std::fs::File;
use std::io::{self, Read};
use std::path::{Component, Path, PathBuf};

use serde_json::{Map, Value};
use zeroize::Zeroizing;

use crate::keys::{Hotkey, KeyError, Keypair, MINI_SECRET_LEN, PUBLIC_KEY_LEN, SECRET_KEY_LEN};

/// Default `--wallet.path` of btcli; `~` is the caller's home directory.
pub const DEFAULT_WALLET_PATH: &str = "~/.bittensor/wallets";
/// Default `--wallet.name` of btcli.
pub const DEFAULT_WALLET_NAME: &str = "default";
/// Default `--wallet.hotkey` of btcli.
pub const DEFAULT_HOTKEY_NAME: &str = "default";
/// Directory inside a wallet that holds its hotkey files.
pub const HOTKEYS_DIR: &str = "hotkeys";

/// Largest hotkey file read. Real ones are under 1 KiB; a larger file is
/// rejected after reading at most this many bytes (plus one).
pub const MAX_HOTKEY_FILE_BYTES: u64 = 64 * 1024;

/// JSON field: BIP39 mnemonic.
pub const FIELD_SECRET_PHRASE: &str = "secretPhrase";
/// JSON field: hex mini secret.
pub const FIELD_SECRET_SEED: &str = "secretSeed";
/// JSON field: hex schnorrkel `SecretKey::to_bytes()`.
pub const FIELD_PRIVATE_KEY: &str = "privateKey";
/// JSON field: hex public key.
pub const FIELD_PUBLIC_KEY: &str = "publicKey";
/// JSON field: hex account id (the public key again).
pub const FIELD_ACCOUNT_ID: &str = "accountId";
/// JSON field: SS58 address.
pub const FIELD_SS58_ADDRESS: &str = "ss58Address";

/// Markers btwallet recognizes at the start of an encrypted key file, with
/// the scheme named in errors.
const ENCRYPTED_MARKERS: [(&[u8], &str); 3] = [
    (b"$NACL", "NaCl"),
    (b"$ANSIBLE_VAULT", "Ansible Vault"),
    (b"gAAAAA", "legacy Fernet"),
];

/// Why a hotkey file could not be located, read, or turned into a key.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum WalletError {
    /// The wallet path starts with `~` and the caller has no home directory.
    #[error("wallet path {path} starts with ~ but no home directory is known (set HOME or give an absolute --wallet.path)")]
    NoHome { path: PathBuf },
    /// A wallet or hotkey name that is not a single plain path component.
    #[error("{what} {value:?} must be a single file name (no '/', not empty, not '.' or '..')")]
    BadName { what: &'static str, value: String },
    /// No file at the path.
    #[error("hotkey file {path} does not exist")]
    Missing { path: PathBuf },
    /// The file exists but reading it failed.
    #[error("hotkey file {path} could not be read: {source}")]
    Unreadable {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    /// The file is larger than [`MAX_HOTKEY_FILE_BYTES`].
    #[error("hotkey file {path} is larger than {max} bytes; not a btcli hotkey file")]
    TooLarge { path: PathBuf, max: u64 },
    /// A password-encrypted btcli key file.
    #[error("hotkey file {path} is encrypted ({scheme}); grail needs an unencrypted hotkey file: recreate the hotkey without a password (e.g. regenerate it from its mnemonic with btcli, choosing not to encrypt it)")]
    Encrypted { path: PathBuf, scheme: &'static str },
    /// Not valid JSON (or not UTF-8).
    #[error("hotkey file {path} is not valid JSON: {source}")]
    NotJson {
        path: PathBuf,
        #[source]
        source: serde_json::Error,
    },
    /// Valid JSON, but not an object.
    #[error("hotkey file {path} is JSON but not an object")]
    NotObject { path: PathBuf },
    /// A known field holding something other than a string or `null`.
    #[error("hotkey file {path}: field {field} is not a string")]
    FieldType { path: PathBuf, field: &'static str },
    /// None of `secretSeed`, `secretPhrase`, `privateKey`.
    #[error(
        "hotkey file {path} has no secret: none of secretSeed, secretPhrase, privateKey is present"
    )]
    NoSecret { path: PathBuf },
    /// A hex field that is not hex.
    #[error("hotkey file {path}: field {field} is not valid hex: {source}")]
    Hex {
        path: PathBuf,
        field: &'static str,
        #[source]
        source: hex::FromHexError,
    },
    /// A hex field of the wrong length.
    #[error("hotkey file {path}: field {field} is {len} bytes, expected {expected}")]
    Length {
        path: PathBuf,
        field: &'static str,
        len: usize,
        expected: usize,
    },
    /// A field whose content the key code rejected (bad mnemonic, invalid
    /// secret scalar, bad SS58 address).
    #[error("hotkey file {path}: field {field}: {source}")]
    Key {
        path: PathBuf,
        field: &'static str,
        #[source]
        source: KeyError,
    },
    /// A field that disagrees with the key derived from `used`.
    #[error("hotkey file {path}: field {field} is for key {found}, but {used} gives {derived}")]
    Mismatch {
        path: PathBuf,
        field: &'static str,
        found: Hotkey,
        used: &'static str,
        derived: Hotkey,
    },
}

/// Replace a leading `~` component with `home`. Only `~` itself is
/// expanded (`~user` is a literal name). Errors when the path needs a home
/// directory and `home` is `None`.
pub fn expand_home(path: &Path, home: Option<&Path>) -> Result<PathBuf, WalletError> {
    match path.strip_prefix("~") {
        Ok(rest) => match home {
            Some(home) => Ok(home.join(rest)),
            None => Err(WalletError::NoHome {
                path: path.to_owned(),
            }),
        },
        Err(_) => Ok(path.to_owned()),
    }
}

/// `<wallet_path>/<wallet_name>/hotkeys/<hotkey>`, with both names checked to
/// be single plain path components. `wallet_path` must already be expanded.
pub fn hotkey_path(
    wallet_path: &Path,
    wallet_name: &str,
    hotkey: &str,
) -> Result<PathBuf, WalletError> {
    check_name("wallet name", wallet_name)?;
    check_name("hotkey name", hotkey)?;
    Ok(wallet_path.join(wallet_name).join(HOTKEYS_DIR).join(hotkey))
}

fn check_name(what: &'static str, value: &str) -> Result<(), WalletError> {
    let mut components = Path::new(value).components();
    let single_normal = matches!(
        (components.next(), components.next()),
        (Some(Component::Normal(c)), None) if c == value
    );
    if single_normal {
        Ok(())
    } else {
        Err(WalletError::BadName {
            what,
            value: value.to_owned(),
        })
    }
}

/// Read and parse the hotkey file at `path` (see the module docs for the
/// rule). Reads at most [`MAX_HOTKEY_FILE_BYTES`] + 1 bytes.
pub fn load_hotkey(path: &Path) -> Result<Keypair, WalletError> {
    let file = File::open(path).map_err(|source| match source.kind() {
        io::ErrorKind::NotFound => WalletError::Missing {
            path: path.to_owned(),
        },
        _ => WalletError::Unreadable {
            path: path.to_owned(),
            source,
        },
    })?;
    let mut contents = Zeroizing::new(Vec::new());
    file.take(MAX_HOTKEY_FILE_BYTES + 1)
        .read_to_end(&mut contents)
        .map_err(|source| WalletError::Unreadable {
            path: path.to_owned(),
            source,
        })?;
    if contents.len() as u64 > MAX_HOTKEY_FILE_BYTES {
        return Err(WalletError::TooLarge {
            path: path.to_owned(),
            max: MAX_HOTKEY_FILE_BYTES,
        });
    }
    parse_hotkey_file(path, &contents)
}

/// Parse the contents of a hotkey file; `path` only names the file in errors.
pub fn parse_hotkey_file(path: &Path, contents: &[u8]) -> Result<Keypair, WalletError> {
    if let Some((_, scheme)) = ENCRYPTED_MARKERS
        .iter()
        .find(|(marker, _)| contents.starts_with(marker))
    {
        return Err(WalletError::Encrypted {
            path: path.to_owned(),
            scheme,
        });
    }
    let value: Value = serde_json::from_slice(contents).map_err(|source| WalletError::NotJson {
        path: path.to_owned(),
        source,
    })?;
    let Value::Object(mut object) = value else {
        return Err(WalletError::NotObject {
            path: path.to_owned(),
        });
    };
    let file = HotkeyFile {
        path,
        secret_seed: take_string(path, &mut object, FIELD_SECRET_SEED)?,
        secret_phrase: take_string(path, &mut object, FIELD_SECRET_PHRASE)?,
        private_key: take_string(path, &mut object, FIELD_PRIVATE_KEY)?,
        public_key: take_string(path, &mut object, FIELD_PUBLIC_KEY)?,
        account_id: take_string(path, &mut object, FIELD_ACCOUNT_ID)?,
        ss58_address: take_string(path, &mut object, FIELD_SS58_ADDRESS)?,
    };
    file.keypair()
}

/// The three ways a hotkey file can hold its secret.
#[derive(Debug, Clone, Copy)]
enum Secret {
    Seed,
    Phrase,
    PrivateKey,
}

impl Secret {
    fn field(self) -> &'static str {
        match self {
            Secret::Seed => FIELD_SECRET_SEED,
            Secret::Phrase => FIELD_SECRET_PHRASE,
            Secret::PrivateKey => FIELD_PRIVATE_KEY,
        }
    }
}

/// The known fields of one file, secrets wiped on drop.
struct HotkeyFile<'a> {
    path: &'a Path,
    secret_seed: Option<Zeroizing<String>>,
    secret_phrase: Option<Zeroizing<String>>,
    private_key: Option<Zeroizing<String>>,
    public_key: Option<Zeroizing<String>>,
    account_id: Option<Zeroizing<String>>,
    ss58_address: Option<Zeroizing<String>>,
}

impl HotkeyFile<'_> {
    fn keypair(&self) -> Result<Keypair, WalletError> {
        // Secret fields in precedence order; the first present one is used.
        let secrets = [
            (Secret::Seed, &self.secret_seed),
            (Secret::Phrase, &self.secret_phrase),
            (Secret::PrivateKey, &self.private_key),
        ];
        let mut present = secrets
            .iter()
            .filter_map(|(kind, value)| value.as_ref().map(|v| (*kind, v.as_str())));
        let Some((used, value)) = present.next() else {
            return Err(WalletError::NoSecret {
                path: self.path.to_owned(),
            });
        };
        let keypair = self.secret_to_keypair(used, value)?;
        let derived = keypair.hotkey();
        let used = used.field();
        for (kind, value) in present {
            let found = self.secret_to_keypair(kind, value)?.hotkey();
            self.check_match(kind.field(), found, used, derived)?;
        }
        for (field, value) in [
            (FIELD_PUBLIC_KEY, &self.public_key),
            (FIELD_ACCOUNT_ID, &self.account_id),
        ] {
            if let Some(value) = value {
                let bytes = self.hex_field::<PUBLIC_KEY_LEN>(field, value)?;
                self.check_match(field, Hotkey::from_bytes(*bytes), used, derived)?;
            }
        }
        if let Some(address) = &self.ss58_address {
            let found = Hotkey::from_ss58(address).map_err(|source| WalletError::Key {
                path: self.path.to_owned(),
                field: FIELD_SS58_ADDRESS,
                source,
            })?;
            self.check_match(FIELD_SS58_ADDRESS, found, used, derived)?;
        }
        Ok(keypair)
    }

    fn secret_to_keypair(&self, kind: Secret, value: &str) -> Result<Keypair, WalletError> {
        let field = kind.field();
        let key_error = |source| WalletError::Key {
            path: self.path.to_owned(),
            field,
            source,
        };
        match kind {
            Secret::Seed => Ok(Keypair::from_mini_secret(
                &*self.hex_field::<MINI_SECRET_LEN>(field, value)?,
            )),
            Secret::Phrase => Keypair::from_phrase(value, None).map_err(key_error),
            Secret::PrivateKey => {
                Keypair::from_secret_key_bytes(&*self.hex_field::<SECRET_KEY_LEN>(field, value)?)
                    .map_err(key_error)
            }
        }
    }

    fn check_match(
        &self,
        field: &'static str,
        found: Hotkey,
        used: &'static str,
        derived: Hotkey,
    ) -> Result<(), WalletError> {
        if found == derived {
            Ok(())
        } else {
            Err(WalletError::Mismatch {
                path: self.path.to_owned(),
                field,
                found,
                used,
                derived,
            })
        }
    }

    /// Exactly `N` bytes of hex, `0x` prefix optional.
    fn hex_field<const N: usize>(
        &self,
        field: &'static str,
        value: &str,
    ) -> Result<Zeroizing<[u8; N]>, WalletError> {
        let digits = value.strip_prefix("0x").unwrap_or(value);
        let bytes = Zeroizing::new(hex::decode(digits).map_err(|source| WalletError::Hex {
            path: self.path.to_owned(),
            field,
            source,
        })?);
        let mut out = Zeroizing::new([0u8; N]);
        if bytes.len() != N {
            return Err(WalletError::Length {
                path: self.path.to_owned(),
                field,
                len: bytes.len(),
                expected: N,
            });
        }
        out.copy_from_slice(&bytes);
        Ok(out)
    }
}

/// Remove `field` from the object: absent or `null` is `None`, a string is
/// kept (wiped on drop), anything else is an error.
fn take_string(
    path: &Path,
    object: &mut Map<String, Value>,
    field: &'static str,
) -> Result<Option<Zeroizing<String>>, WalletError> {
    match object.remove(field) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(Zeroizing::new(s))),
        Some(_) => Err(WalletError::FieldType {
            path: path.to_owned(),
            field,
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::keys::DEV_PHRASE;
    use schnorrkel::{ExpansionMode, MiniSecretKey};
    use serde_json::json;

    const ALICE_SS58: &str = "5GrwvaEF5zXb26Fz9rcQpDWS57CtERHpNehXCPcNoHGKutQY";
    const ALICE_SEED: &str = "0xe5be9a5092b81bca64be81d212e7f2f9eba183bb7a90954f7b76361f6edb5c0a";
    const ALICE_PUBLIC: &str = "0xd43593c715fdd31c61141abd04a99fd6822c8558854ccde39a5684e7a56da27d";
    const BOB_SS58: &str = "5FHneW46xGXgs5mUiveU4sbTyGBzmstUspZC92UhjJM694ty";
    /// `subkey inspect` of DEV_PHRASE (no derivation).
    const DEV_ROOT_SEED: &str =
        "0xfac7959dbfe72f052e5a0c3c8d6530f202b02fd8f9f5ca3580ec8deb7797479e";
    const DEV_ROOT_SS58: &str = "5DfhGyQdFobKM8NsWvEeAKk5EQQgYe9AydgJ7rMB6E1EqRzV";

    /// schnorrkel `SecretKey::to_bytes()` of a mini secret, as btwallet writes
    /// `privateKey`.
    fn private_key_hex(seed_hex: &str) -> String {
        let seed = hex::decode(seed_hex.trim_start_matches("0x")).unwrap();
        let secret = MiniSecretKey::from_bytes(&seed)
            .unwrap()
            .expand(ExpansionMode::Ed25519);
        format!("0x{}", hex::encode(secret.to_bytes()))
    }

    fn public_hex(ss58: &str) -> String {
        format!(
            "0x{}",
            hex::encode(Hotkey::from_ss58(ss58).unwrap().as_bytes())
        )
    }

    /// A hotkey file as btwallet writes it for a key made from a mnemonic.
    fn full_dev_root_file() -> Value {
        json!({
            "accountId": public_hex(DEV_ROOT_SS58),
            "publicKey": public_hex(DEV_ROOT_SS58),
            "privateKey": private_key_hex(DEV_ROOT_SEED),
            "secretPhrase": DEV_PHRASE,
            "secretSeed": DEV_ROOT_SEED,
            "ss58Address": DEV_ROOT_SS58,
        })
    }

    /// Write `contents` as `<tmp>/<wallet>/hotkeys/<hotkey>`; return the wallet path.
    fn write_wallet(contents: &[u8]) -> (tempfile::TempDir, PathBuf) {
        let dir = tempfile::tempdir().unwrap();
        let hotkeys = dir.path().join("w").join(HOTKEYS_DIR);
        std::fs::create_dir_all(&hotkeys).unwrap();
        std::fs::write(hotkeys.join("h"), contents).unwrap();
        let path = hotkey_path(dir.path(), "w", "h").unwrap();
        (dir, path)
    }

    fn load_json(value: &Value) -> Result<Keypair, WalletError> {
        let (_dir, path) = write_wallet(value.to_string().as_bytes());
        load_hotkey(&path)
    }

    fn without(mut value: Value, fields: &[&str]) -> Value {
        for field in fields {
            value.as_object_mut().unwrap().remove(*field);
        }
        value
    }

    #[test]
    fn loads_secret_seed() {
        let file = json!({ "secretSeed": ALICE_SEED, "publicKey": ALICE_PUBLIC, "ss58Address": ALICE_SS58 });
        assert_eq!(load_json(&file).unwrap().hotkey().to_ss58(), ALICE_SS58);
        // Without the 0x prefix, as btwallet's reader also accepts.
        let bare = json!({ "secretSeed": ALICE_SEED.trim_start_matches("0x") });
        assert_eq!(load_json(&bare).unwrap().hotkey().to_ss58(), ALICE_SS58);
    }

    #[test]
    fn loads_secret_phrase() {
        let file = json!({ "secretPhrase": DEV_PHRASE, "ss58Address": DEV_ROOT_SS58 });
        assert_eq!(load_json(&file).unwrap().hotkey().to_ss58(), DEV_ROOT_SS58);
    }

    #[test]
    fn loads_private_key() {
        let file = json!({
            "privateKey": private_key_hex(ALICE_SEED),
            "accountId": ALICE_PUBLIC,
            "ss58Address": ALICE_SS58,
        });
        assert_eq!(load_json(&file).unwrap().hotkey().to_ss58(), ALICE_SS58);
    }

    #[test]
    fn loads_full_btwallet_file() {
        let keypair = load_json(&full_dev_root_file()).unwrap();
        assert_eq!(keypair.hotkey().to_ss58(), DEV_ROOT_SS58);
    }

    #[test]
    fn null_fields_are_absent() {
        // The older Python wallet wrote every field, null when unknown.
        let file = json!({
            "accountId": ALICE_PUBLIC,
            "publicKey": ALICE_PUBLIC,
            "privateKey": null,
            "secretPhrase": null,
            "secretSeed": ALICE_SEED,
            "ss58Address": ALICE_SS58,
        });
        assert_eq!(load_json(&file).unwrap().hotkey().to_ss58(), ALICE_SS58);
    }

    #[test]
    fn mismatched_public_key_rejected() {
        let mut file = full_dev_root_file();
        file["publicKey"] = json!(ALICE_PUBLIC);
        let err = load_json(&file).unwrap_err();
        assert!(
            matches!(
                &err,
                WalletError::Mismatch { field: "publicKey", used: "secretSeed", found, derived, .. }
                    if found.to_ss58() == ALICE_SS58 && derived.to_ss58() == DEV_ROOT_SS58
            ),
            "{err}"
        );
        let message = err.to_string();
        assert!(
            message.contains("publicKey") && message.contains("/w/hotkeys/h"),
            "{message}"
        );
    }

    #[test]
    fn mismatched_account_id_rejected() {
        let mut file = full_dev_root_file();
        file["accountId"] = json!(ALICE_PUBLIC);
        assert!(matches!(
            load_json(&file).unwrap_err(),
            WalletError::Mismatch {
                field: "accountId",
                ..
            }
        ));
    }

    #[test]
    fn mismatched_ss58_rejected() {
        let mut file = full_dev_root_file();
        file["ss58Address"] = json!(BOB_SS58);
        assert!(matches!(
            load_json(&file).unwrap_err(),
            WalletError::Mismatch {
                field: "ss58Address",
                ..
            }
        ));
    }

    #[test]
    fn disagreeing_secrets_rejected() {
        // secretSeed wins; a phrase for another key is an error, not ignored.
        let file = json!({ "secretSeed": ALICE_SEED, "secretPhrase": DEV_PHRASE });
        assert!(matches!(
            load_json(&file).unwrap_err(),
            WalletError::Mismatch {
                field: "secretPhrase",
                used: "secretSeed",
                ..
            }
        ));
        let file = json!({ "secretPhrase": DEV_PHRASE, "privateKey": private_key_hex(ALICE_SEED) });
        assert!(matches!(
            load_json(&file).unwrap_err(),
            WalletError::Mismatch {
                field: "privateKey",
                used: "secretPhrase",
                ..
            }
        ));
    }

    #[test]
    fn encrypted_file_rejected() {
        let (_dir, path) = write_wallet(b"$NACL\x13q\x83\xdf\xf1Z\t\xbc\x9c\x90\xb5Q\x879\xe9\xb1");
        let err = load_hotkey(&path).unwrap_err();
        assert!(
            matches!(err, WalletError::Encrypted { scheme: "NaCl", .. }),
            "{err}"
        );
        let message = err.to_string();
        assert!(message.contains("encrypted"), "{message}");
        assert!(message.contains("unencrypted hotkey file"), "{message}");
        assert!(message.contains(&path.display().to_string()), "{message}");
        for (contents, scheme) in [
            (&b"$ANSIBLE_VAULT;1.1;AES256\n3033"[..], "Ansible Vault"),
            (&b"gAAAAABk"[..], "legacy Fernet"),
        ] {
            assert!(matches!(
                parse_hotkey_file(&path, contents).unwrap_err(),
                WalletError::Encrypted { scheme: s, .. } if s == scheme
            ));
        }
    }

    #[test]
    fn truncated_json_rejected() {
        let full = full_dev_root_file().to_string();
        let (_dir, path) = write_wallet(&full.as_bytes()[..full.len() / 2]);
        assert!(matches!(
            load_hotkey(&path).unwrap_err(),
            WalletError::NotJson { .. }
        ));
    }

    #[test]
    fn garbage_rejected() {
        let (_dir, path) = write_wallet(b"\xff\xfe not json at all");
        assert!(matches!(
            load_hotkey(&path).unwrap_err(),
            WalletError::NotJson { .. }
        ));
        let (_dir, path) = write_wallet(b"");
        assert!(matches!(
            load_hotkey(&path).unwrap_err(),
            WalletError::NotJson { .. }
        ));
    }

    #[test]
    fn non_object_rejected() {
        let (_dir, path) = write_wallet(br#"["secretSeed"]"#);
        assert!(matches!(
            load_hotkey(&path).unwrap_err(),
            WalletError::NotObject { .. }
        ));
    }

    #[test]
    fn non_string_field_rejected() {
        let file = json!({ "secretSeed": ALICE_SEED, "publicKey": 42 });
        assert!(matches!(
            load_json(&file).unwrap_err(),
            WalletError::FieldType {
                field: "publicKey",
                ..
            }
        ));
    }

    #[test]
    fn no_secret_rejected() {
        let file = without(
            full_dev_root_file(),
            &["secretSeed", "secretPhrase", "privateKey"],
        );
        assert!(matches!(
            load_json(&file).unwrap_err(),
            WalletError::NoSecret { .. }
        ));
    }

    #[test]
    fn malformed_hex_rejected() {
        let file = json!({ "secretSeed": "0xzz5be9a5092b81bca64be81d212e7f2f9eba183bb7a90954f7b76361f6edb5c" });
        assert!(matches!(
            load_json(&file).unwrap_err(),
            WalletError::Hex {
                field: "secretSeed",
                ..
            }
        ));
        let file = json!({ "secretSeed": ALICE_SEED, "publicKey": "0xd43" });
        assert!(matches!(
            load_json(&file).unwrap_err(),
            WalletError::Hex {
                field: "publicKey",
                ..
            }
        ));
    }

    #[test]
    fn wrong_length_rejected() {
        let file = json!({ "secretSeed": &ALICE_SEED[..ALICE_SEED.len() - 2] });
        assert!(matches!(
            load_json(&file).unwrap_err(),
            WalletError::Length {
                field: "secretSeed",
                len: 31,
                expected: 32,
                ..
            }
        ));
        // A 32-byte seed where the 64-byte private key belongs.
        let file = json!({ "privateKey": ALICE_SEED });
        assert!(matches!(
            load_json(&file).unwrap_err(),
            WalletError::Length {
                field: "privateKey",
                len: 32,
                expected: 64,
                ..
            }
        ));
    }

    #[test]
    fn invalid_key_material_rejected() {
        let file = json!({ "secretPhrase": "bottom drive obey lake" });
        assert!(matches!(
            load_json(&file).unwrap_err(),
            WalletError::Key {
                field: "secretPhrase",
                source: KeyError::InvalidPhrase { .. },
                ..
            }
        ));
        let file = json!({ "privateKey": format!("0x{}", "ff".repeat(64)) });
        assert!(matches!(
            load_json(&file).unwrap_err(),
            WalletError::Key {
                field: "privateKey",
                source: KeyError::InvalidSecretKey { .. },
                ..
            }
        ));
        let file = json!({ "secretSeed": ALICE_SEED, "ss58Address": "not-an-address" });
        assert!(matches!(
            load_json(&file).unwrap_err(),
            WalletError::Key {
                field: "ss58Address",
                source: KeyError::Ss58Base58 { .. },
                ..
            }
        ));
    }

    #[test]
    fn missing_file_rejected() {
        let dir = tempfile::tempdir().unwrap();
        let path = hotkey_path(dir.path(), "default", "default").unwrap();
        let err = load_hotkey(&path).unwrap_err();
        assert!(matches!(&err, WalletError::Missing { path: p } if *p == path));
        assert!(err.to_string().contains(&path.display().to_string()));
    }

    #[test]
    fn unreadable_file_rejected() {
        // A directory where the file should be: open succeeds, read fails.
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("w").join(HOTKEYS_DIR).join("h");
        std::fs::create_dir_all(&path).unwrap();
        assert!(matches!(
            load_hotkey(&path).unwrap_err(),
            WalletError::Unreadable { .. }
        ));
    }

    #[test]
    fn oversized_file_rejected() {
        let mut contents = b"{\"secretSeed\": \"".to_vec();
        contents.resize(MAX_HOTKEY_FILE_BYTES as usize + 10, b'0');
        let (_dir, path) = write_wallet(&contents);
        assert!(matches!(
            load_hotkey(&path).unwrap_err(),
            WalletError::TooLarge {
                max: MAX_HOTKEY_FILE_BYTES,
                ..
            }
        ));
    }

    #[test]
    fn home_expansion() {
        let home = Path::new("/home/miner");
        assert_eq!(
            expand_home(Path::new(DEFAULT_WALLET_PATH), Some(home)).unwrap(),
            Path::new("/home/miner/.bittensor/wallets")
        );
        assert_eq!(expand_home(Path::new("~"), Some(home)).unwrap(), home);
        assert_eq!(
            expand_home(Path::new("/srv/wallets"), None).unwrap(),
            Path::new("/srv/wallets")
        );
        assert_eq!(
            expand_home(Path::new("~user/w"), None).unwrap(),
            Path::new("~user/w")
        );
        assert!(matches!(
            expand_home(Path::new("~/w"), None).unwrap_err(),
            WalletError::NoHome { .. }
        ));
    }

    #[test]
    fn hotkey_path_layout_and_bad_names() {
        assert_eq!(
            hotkey_path(Path::new("/w"), "default", "miner1").unwrap(),
            Path::new("/w/default/hotkeys/miner1")
        );
        for bad in ["", ".", "..", "a/b", "/abs", "a/"] {
            assert!(
                matches!(
                    hotkey_path(Path::new("/w"), bad, "h").unwrap_err(),
                    WalletError::BadName {
                        what: "wallet name",
                        ..
                    }
                ),
                "{bad:?}"
            );
            assert!(matches!(
                hotkey_path(Path::new("/w"), "n", bad).unwrap_err(),
                WalletError::BadName {
                    what: "hotkey name",
                    ..
                }
            ));
        }
    }

    #[test]
    fn dev_root_seed_known_answer() {
        // The fixture seed is what the dev phrase derives to.
        let seed: [u8; 32] = hex::decode(&DEV_ROOT_SEED[2..])
            .unwrap()
            .try_into()
            .unwrap();
        assert_eq!(
            Keypair::from_mini_secret(&seed).hotkey().to_ss58(),
            DEV_ROOT_SS58
        );
    }
}
