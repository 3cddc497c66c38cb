//! The validator's state (PROTOCOL.md §16): every miner's per-window result
//! and the weights of every scored window, in one SQLite file.
//!
//! A window is scored once: [`ValidatorDb::record_window`] writes its
//! results and weights in one transaction and refuses a window already
//! there, so a restart never counts a window twice and a crash mid-write
//! leaves no part of one. The file uses WAL journaling with
//! `synchronous=FULL`: a committed window survives power loss.
use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::time::Duration;

use grail_core::keys::Hotkey;
use rusqlite::{
    params, Connection, ErrorCode, OptionalExtension, Transaction, TransactionBehavior,
};

use crate::score::{MinerWindowRecord, Outcome, Weights};

/// The schema version this code reads and writes, kept in SQLite's
/// `user_version` header field. A file with a different version is refused.
pub const SCHEMA_VERSION: i64 = 1;

/// How long a statement waits for another connection's write lock before
/// failing with "database is locked".
pub const BUSY_TIMEOUT: Duration = Duration::from_secs(5);

const SCHEMA: &str = "
CREATE TABLE windows (
    window        INTEGER PRIMARY KEY NOT NULL,
    scored_at_ms  INTEGER NOT NULL,
    weights_json  TEXT NOT NULL
);
CREATE TABLE results (
    window              INTEGER NOT NULL REFERENCES windows(window),
    uid                 INTEGER NOT NULL,
    hotkey              BLOB NOT NULL CHECK (length(hotkey) = 32),
    outcome             TEXT NOT NULL
                        CHECK (outcome IN ('passed', 'failed', 'missing', 'not_sampled')),
    rollouts            INTEGER,
    unique_completions  INTEGER,
    checked             INTEGER,
    reason              TEXT,
    detail              TEXT,
    PRIMARY KEY (window, hotkey)
);
CREATE INDEX results_window_uid ON results (window, uid);
";

/// Why a state operation failed. Every variant names the file or window.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StateError {
    /// SQLite could not open the file.
    #[error("opening validator state {path}: {source}")]
    Open {
        /// The file.
        path: PathBuf,
        /// SQLite's error.
        #[source]
        source: rusqlite::Error,
    },
    /// The file exists but is not a SQLite database.
    #[error("validator state {path} is not a SQLite database")]
    NotADatabase {
        /// The file.
        path: PathBuf,
    },
    /// The file is a SQLite database with tables but no grail schema version:
    /// some other program's database.
    #[error("validator state {path} is a SQLite database but not a grail validator's (user_version 0, tables present)")]
    ForeignDatabase {
        /// The file.
        path: PathBuf,
    },
    /// The file's schema version is not one this code knows.
    #[error(
        "validator state {path} has schema version {found}; this grail reads version {supported}"
    )]
    UnsupportedSchema {
        /// The file.
        path: PathBuf,
        /// The version in the file.
        found: i64,
        /// [`SCHEMA_VERSION`].
        supported: i64,
    },
    /// SQLite would not switch the file to WAL journaling.
    #[error("validator state {path}: journal mode is {got}, not wal")]
    JournalMode {
        /// The file.
        path: PathBuf,
        /// The mode SQLite reported.
        got: String,
    },
    /// A query or update failed.
    #[error("validator state {path}: {op}: {source}")]
    Sqlite {
        /// The file.
        path: PathBuf,
        /// What was being done.
        op: &'static str,
        /// SQLite's error.
        #[source]
        source: rusqlite::Error,
    },
    /// The window was already scored; nothing was written.
    #[error("window {window} is already scored")]
    AlreadyScored {
        /// The window.
        window: u64,
    },
    /// A record to store belongs to another window.
    #[error("recording window {window}: the record for uid {uid} is for window {record_window}")]
    RecordWindowMismatch {
        /// The window being recorded.
        window: u64,
        /// The record's uid.
        uid: u16,
        /// The record's window.
        record_window: u64,
    },
    /// The weights to store are for another window.
    #[error("recording window {window}: the weights are for window {weights_window}")]
    WeightsWindowMismatch {
        /// The window being recorded.
        window: u64,
        /// The weights' window.
        weights_window: u64,
    },
    /// Two records for one hotkey in the window being recorded.
    #[error("recording window {window}: two records for hotkey {hotkey} (uid {uid})")]
    DuplicateRecord {
        /// The window.
        window: u64,
        /// The second record's uid.
        uid: u16,
        /// The hotkey, SS58.
        hotkey: String,
    },
    /// A number does not fit SQLite's signed 64-bit integers.
    #[error("{what} {value} does not fit a SQLite integer (max {})", i64::MAX)]
    OutOfRange {
        /// Which number (`window`, `now_ms`, ...).
        what: &'static str,
        /// Its value.
        value: u64,
    },
    /// The weights could not be written as JSON.
    #[error("weights for window {window} as JSON: {source}")]
    WeightsJson {
        /// The window.
        window: u64,
        /// The serializer's error.
        #[source]
        source: serde_json::Error,
    },
    /// A stored row does not describe a valid record.
    #[error("validator state {path}: results row (window {window}, uid {uid}): {what}")]
    Corrupt {
        /// The file.
        path: PathBuf,
        /// The row's window column.
        window: i64,
        /// The row's uid column.
        uid: i64,
        /// What is wrong with it.
        what: String,
    },
}

/// The validator's state database (one SQLite file).
#[derive(Debug)]
pub struct ValidatorDb {
    conn: Connection,
    path: PathBuf,
}

/// One `results` row as stored.
struct Row {
    window: i64,
    uid: i64,
    hotkey: Vec<u8>,
    outcome: String,
    rollouts: Option<i64>,
    unique: Option<i64>,
    checked: Option<i64>,
    reason: Option<String>,
    detail: Option<String>,
}

fn to_i64(what: &'static str, value: u64) -> Result<i64, StateError> {
    i64::try_from(value).map_err(|_| StateError::OutOfRange { what, value })
}

impl ValidatorDb {
    /// Opens the state file at `path`, creating it and its schema if new.
    ///
    /// Sets WAL journaling and `synchronous=FULL`. Refuses a file that is
    /// not SQLite, another program's database, or a schema version other
    /// than [`SCHEMA_VERSION`].
    pub fn open(path: &Path) -> Result<Self, StateError> {
        let conn = Connection::open(path).map_err(|source| open_error(path, source))?;
        let db = ValidatorDb {
            conn,
            path: path.to_owned(),
        };
        db.conn
            .busy_timeout(BUSY_TIMEOUT)
            .map_err(|source| open_error(path, source))?;
        // The first statement that reads the file: a non-SQLite file fails here.
        let mode: String = db
            .conn
            .pragma_update_and_check(None, "journal_mode", "WAL", |row| row.get(0))
            .map_err(|source| open_error(path, source))?;
        if !mode.eq_ignore_ascii_case("wal") {
            return Err(StateError::JournalMode {
                path: db.path.clone(),
                got: mode,
            });
        }
        db.conn
            .pragma_update(None, "synchronous", "FULL")
            .map_err(|e| db.sqlite("setting synchronous=FULL", e))?;
        db.conn
            .pragma_update(None, "foreign_keys", true)
            .map_err(|e| db.sqlite("enabling foreign keys", e))?;
        let mut db = db;
        db.ensure_schema()?;
        Ok(db)
    }

    /// The file this database lives in.
    pub fn path(&self) -> &Path {
        &self.path
    }

    fn sqlite(&self, op: &'static str, source: rusqlite::Error) -> StateError {
        StateError::Sqlite {
            path: self.path.clone(),
            op,
            source,
        }
    }

    /// Checks the schema version of an existing file, or creates the schema
    /// in a new one (under the write lock, re-checking the version, so two
    /// processes opening one new file cannot both create it).
    fn ensure_schema(&mut self) -> Result<(), StateError> {
        let path = self.path.clone();
        let fail = |op, source| StateError::Sqlite {
            path: path.clone(),
            op,
            source,
        };
        let check = |conn: &Connection| -> Result<bool, StateError> {
            let version: i64 = conn
                .pragma_query_value(None, "user_version", |row| row.get(0))
                .map_err(|e| fail("reading user_version", e))?;
            match version {
                SCHEMA_VERSION => Ok(true),
                0 => Ok(false),
                found => Err(StateError::UnsupportedSchema {
                    path: path.clone(),
                    found,
                    supported: SCHEMA_VERSION,
                }),
            }
        };
        // Without a lock first: an existing file must open while another
        // connection is writing a window.
        if check(&self.conn)? {
            return Ok(());
        }
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(|e| fail("starting the schema transaction", e))?;
        if check(&tx)? {
            return Ok(()); // created by another process meanwhile
        }
        let tables: i64 = tx
            .query_row("SELECT count(*) FROM sqlite_schema", [], |row| row.get(0))
            .map_err(|e| fail("listing tables", e))?;
        if tables != 0 {
            return Err(StateError::ForeignDatabase { path: path.clone() });
        }
        tx.execute_batch(SCHEMA)
            .map_err(|e| fail("creating the schema", e))?;
        tx.pragma_update(None, "user_version", SCHEMA_VERSION)
            .map_err(|e| fail("setting user_version", e))?;
        tx.commit().map_err(|e| fail("committing the schema", e))
    }

    /// Whether `window` has been scored.
    pub fn is_scored(&self, window: u64) -> Result<bool, StateError> {
        is_scored(&self.conn, to_i64("window", window)?).map_err(|e| self.sqlite("is_scored", e))
    }

    /// The latest scored window, if any.
    pub fn last_scored_window(&self) -> Result<Option<u64>, StateError> {
        let max: Option<i64> = self
            .conn
            .query_row("SELECT max(window) FROM windows", [], |row| row.get(0))
            .map_err(|e| self.sqlite("last_scored_window", e))?;
        // Every stored window came from a u64 through to_i64.
        Ok(max.and_then(|w| u64::try_from(w).ok()))
    }

    /// The weights JSON recorded for `window`, if it was scored.
    pub fn weights(&self, window: u64) -> Result<Option<String>, StateError> {
        self.conn
            .query_row(
                "SELECT weights_json FROM windows WHERE window = ?1",
                [to_i64("window", window)?],
                |row| row.get(0),
            )
            .optional()
            .map_err(|e| self.sqlite("reading weights", e))
    }

    /// Every stored result with `window >= from_window`, ordered by window,
    /// then uid.
    pub fn history(&self, from_window: u64) -> Result<Vec<MinerWindowRecord>, StateError> {
        let from = to_i64("from_window", from_window)?;
        let mut stmt = self
            .conn
            .prepare_cached(
                "SELECT window, uid, hotkey, outcome, rollouts, unique_completions, checked, \
                 reason, detail FROM results WHERE window >= ?1 ORDER BY window, uid, hotkey",
            )
            .map_err(|e| self.sqlite("preparing history", e))?;
        let rows = stmt
            .query_map([from], |row| {
                Ok(Row {
                    window: row.get(0)?,
                    uid: row.get(1)?,
                    hotkey: row.get(2)?,
                    outcome: row.get(3)?,
                    rollouts: row.get(4)?,
                    unique: row.get(5)?,
                    checked: row.get(6)?,
                    reason: row.get(7)?,
                    detail: row.get(8)?,
                })
            })
            .map_err(|e| self.sqlite("reading history", e))?;
        let mut out = Vec::new();
        for row in rows {
            let row = row.map_err(|e| self.sqlite("reading history", e))?;
            out.push(self.decode(row)?);
        }
        Ok(out)
    }

    fn decode(&self, row: Row) -> Result<MinerWindowRecord, StateError> {
        let corrupt = |what: String| StateError::Corrupt {
            path: self.path.clone(),
            window: row.window,
            uid: row.uid,
            what,
        };
        let window = u64::try_from(row.window).map_err(|_| corrupt("negative window".into()))?;
        let uid = u16::try_from(row.uid).map_err(|_| corrupt("uid is not a u16".into()))?;
        let hotkey: [u8; 32] = row
            .hotkey
            .as_slice()
            .try_into()
            .map_err(|_| corrupt(format!("hotkey is {} bytes, not 32", row.hotkey.len())))?;
        let count = |name: &str, v: Option<i64>| -> Result<u32, StateError> {
            let v = v.ok_or_else(|| corrupt(format!("passed with NULL {name}")))?;
            u32::try_from(v).map_err(|_| corrupt(format!("{name} {v} is not a u32")))
        };
        let outcome = match row.outcome.as_str() {
            "passed" => Outcome::Passed {
                rollouts: count("rollouts", row.rollouts)?,
                unique: count("unique_completions", row.unique)?,
                checked: count("checked", row.checked)?,
            },
            "failed" => Outcome::Failed {
                reason: row
                    .reason
                    .ok_or_else(|| corrupt("failed with NULL reason".into()))?,
                detail: row
                    .detail
                    .ok_or_else(|| corrupt("failed with NULL detail".into()))?,
            },
            "missing" => Outcome::Missing,
            "not_sampled" => Outcome::NotSampled,
            other => return Err(corrupt(format!("unknown outcome {other:?}"))),
        };
        Ok(MinerWindowRecord {
            window,
            uid,
            hotkey,
            outcome,
        })
    }

    /// Records `window` as scored: every result in `records` and the
    /// `weights`, in one transaction.
    ///
    /// Fails with [`StateError::AlreadyScored`] if the window is already
    /// there, and writes nothing on any error.
    pub fn record_window(
        &mut self,
        window: u64,
        records: &[MinerWindowRecord],
        weights: &Weights,
        now_ms: u64,
    ) -> Result<(), StateError> {
        if weights.window != window {
            return Err(StateError::WeightsWindowMismatch {
                window,
                weights_window: weights.window,
            });
        }
        let mut hotkeys = HashSet::with_capacity(records.len());
        for r in records {
            if r.window != window {
                return Err(StateError::RecordWindowMismatch {
                    window,
                    uid: r.uid,
                    record_window: r.window,
                });
            }
            if !hotkeys.insert(r.hotkey) {
                return Err(StateError::DuplicateRecord {
                    window,
                    uid: r.uid,
                    hotkey: Hotkey::from_bytes(r.hotkey).to_ss58(),
                });
            }
        }
        let json = serde_json::to_string(weights)
            .map_err(|source| StateError::WeightsJson { window, source })?;
        self.write_window(window, records, &json, now_ms)
    }

    /// The transaction of [`Self::record_window`], after validation.
    fn write_window(
        &mut self,
        window: u64,
        records: &[MinerWindowRecord],
        weights_json: &str,
        now_ms: u64,
    ) -> Result<(), StateError> {
        let w = to_i64("window", window)?;
        let now = to_i64("now_ms", now_ms)?;
        let path = self.path.clone();
        let fail = |op, source| StateError::Sqlite {
            path: path.clone(),
            op,
            source,
        };
        // IMMEDIATE: take the write lock before the check, so two writers
        // cannot both see the window unscored.
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(|e| fail("starting the window transaction", e))?;
        if is_scored(&tx, w).map_err(|e| fail("is_scored", e))? {
            return Err(StateError::AlreadyScored { window });
        }
        insert_window(&tx, w, records, weights_json, now)
            .map_err(|e| fail("recording window", e))?;
        // Dropping `tx` on any error above rolls everything back.
        tx.commit().map_err(|e| fail("committing the window", e))
    }
}

/// Maps an error from the first statements on a file to the open errors.
fn open_error(path: &Path, source: rusqlite::Error) -> StateError {
    if source.sqlite_error_code() == Some(ErrorCode::NotADatabase) {
        StateError::NotADatabase {
            path: path.to_owned(),
        }
    } else {
        StateError::Open {
            path: path.to_owned(),
            source,
        }
    }
}

fn is_scored(conn: &Connection, window: i64) -> rusqlite::Result<bool> {
    conn.query_row(
        "SELECT EXISTS (SELECT 1 FROM windows WHERE window = ?1)",
        [window],
        |row| row.get(0),
    )
}

/// The inserts of one window, inside the caller's transaction.
fn insert_window(
    tx: &Transaction<'_>,
    window: i64,
    records: &[MinerWindowRecord],
    weights_json: &str,
    now_ms: i64,
) -> rusqlite::Result<()> {
    tx.execute(
        "INSERT INTO windows (window, scored_at_ms, weights_json) VALUES (?1, ?2, ?3)",
        params![window, now_ms, weights_json],
    )?;
    let mut stmt = tx.prepare_cached(
        "INSERT INTO results (window, uid, hotkey, outcome, rollouts, unique_completions, \
         checked, reason, detail) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
    )?;
    for r in records {
        let (rollouts, unique, checked, reason, detail) = match &r.outcome {
            Outcome::Passed {
                rollouts,
                unique,
                checked,
            } => (Some(*rollouts), Some(*unique), Some(*checked), None, None),
            Outcome::Failed { reason, detail } => (
                None,
                None,
                None,
                Some(reason.as_str()),
                Some(detail.as_str()),
            ),
            Outcome::Missing | Outcome::NotSampled => (None, None, None, None, None),
        };
        stmt.execute(params![
            window,
            r.uid,
            &r.hotkey[..],
            r.outcome.kind(),
            rollouts,
            unique,
            checked,
            reason,
            detail
        ])?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::score::{compute_weights, ScoreParams};

    const W: u64 = 30 * 500;

    fn records(window: u64) -> Vec<MinerWindowRecord> {
        vec![
            MinerWindowRecord {
                window,
                uid: 2,
                hotkey: [2; 32],
                outcome: Outcome::Passed {
                    rollouts: 64,
                    unique: 60,
                    checked: 8,
                },
            },
            MinerWindowRecord {
                window,
                uid: 1,
                hotkey: [1; 32],
                outcome: Outcome::Failed {
                    reason: "sketch_mismatch".into(),
                    detail: "rollout 3 position 17: hamming 61 > 20".into(),
                },
            },
            MinerWindowRecord {
                window,
                uid: 3,
                hotkey: [3; 32],
                outcome: Outcome::Missing,
            },
            MinerWindowRecord {
                window,
                uid: 4,
                hotkey: [4; 32],
                outcome: Outcome::NotSampled,
            },
        ]
    }

    fn weights(window: u64, records: &[MinerWindowRecord]) -> Weights {
        let registered: Vec<_> = records.iter().map(|r| (r.uid, r.hotkey)).collect();
        compute_weights(&registered, records, window, &ScoreParams::default()).unwrap()
    }

    fn sorted(mut v: Vec<MinerWindowRecord>) -> Vec<MinerWindowRecord> {
        v.sort_by_key(|r| (r.window, r.uid));
        v
    }

    fn open_temp() -> (tempfile::TempDir, PathBuf, ValidatorDb) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state.sqlite");
        let db = ValidatorDb::open(&path).unwrap();
        (dir, path, db)
    }

    #[test]
    fn round_trip() {
        let (_dir, _path, mut db) = open_temp();
        assert_eq!(db.last_scored_window().unwrap(), None);
        assert!(!db.is_scored(W).unwrap());
        for w in [W - 30, W] {
            let r = records(w);
            db.record_window(w, &r, &weights(w, &r), 1_700_000_000_000)
                .unwrap();
        }
        assert!(db.is_scored(W).unwrap());
        assert!(!db.is_scored(W + 30).unwrap());
        assert_eq!(db.last_scored_window().unwrap(), Some(W));

        let mut want = records(W - 30);
        want.extend(records(W));
        assert_eq!(db.history(0).unwrap(), sorted(want));
        assert_eq!(db.history(W).unwrap(), sorted(records(W)));
        assert_eq!(db.history(W + 30).unwrap(), vec![]);

        let json = db.weights(W).unwrap().unwrap();
        let back: Weights = serde_json::from_str(&json).unwrap();
        assert_eq!(back, weights(W, &records(W)));
        assert_eq!(db.weights(W + 30).unwrap(), None);
    }

    #[test]
    fn a_window_is_scored_once() {
        let (_dir, _path, mut db) = open_temp();
        let r = records(W);
        let w = weights(W, &r);
        db.record_window(W, &r, &w, 1).unwrap();

        let mut other = records(W);
        other[0].uid = 9;
        other[0].hotkey = [9; 32];
        let err = db.record_window(W, &other, &w, 2).unwrap_err();
        assert!(
            matches!(err, StateError::AlreadyScored { window: W }),
            "{err}"
        );
        assert_eq!(db.history(0).unwrap(), sorted(r));
        let scored_at: i64 = db
            .conn
            .query_row("SELECT scored_at_ms FROM windows", [], |row| row.get(0))
            .unwrap();
        assert_eq!(scored_at, 1);
    }

    #[test]
    fn everything_survives_reopening() {
        let (_dir, path, mut db) = open_temp();
        let r = records(W);
        db.record_window(W, &r, &weights(W, &r), 5).unwrap();
        drop(db);
        let mut db = ValidatorDb::open(&path).unwrap();
        assert_eq!(db.last_scored_window().unwrap(), Some(W));
        assert_eq!(db.history(0).unwrap(), sorted(r.clone()));
        assert!(matches!(
            db.record_window(W, &r, &weights(W, &r), 6),
            Err(StateError::AlreadyScored { .. })
        ));
        let mode: String = db
            .conn
            .pragma_query_value(None, "journal_mode", |row| row.get(0))
            .unwrap();
        assert_eq!(mode, "wal");
        let sync: i64 = db
            .conn
            .pragma_query_value(None, "synchronous", |row| row.get(0))
            .unwrap();
        assert_eq!(sync, 2, "FULL");
    }

    #[test]
    fn an_uncommitted_window_leaves_nothing() {
        let (_dir, path, mut db) = open_temp();
        let r = records(W);
        let json = serde_json::to_string(&weights(W, &r)).unwrap();
        {
            // The process "dies" after writing the window row and every
            // result, before commit.
            let tx = db.conn.transaction().unwrap();
            insert_window(&tx, W as i64, &r, &json, 1).unwrap();
            // Another process sees none of it while it is uncommitted.
            let other = ValidatorDb::open(&path).unwrap();
            assert!(!other.is_scored(W).unwrap());
            assert!(other.history(0).unwrap().is_empty());
        }
        assert!(!db.is_scored(W).unwrap());
        assert!(db.history(0).unwrap().is_empty());
        // And the window can still be recorded.
        db.record_window(W, &r, &weights(W, &r), 2).unwrap();
        assert_eq!(db.history(0).unwrap(), sorted(r));
    }

    #[test]
    fn a_failure_midway_rolls_back_the_window() {
        let (_dir, _path, mut db) = open_temp();
        // Bypass record_window's checks: the second record repeats the
        // first's hotkey, so its insert fails after the windows row and one
        // result are written.
        let mut r = records(W);
        r[1].hotkey = r[0].hotkey;
        let err = db.write_window(W, &r, "{}", 1).unwrap_err();
        assert!(matches!(err, StateError::Sqlite { .. }), "{err}");
        assert!(!db.is_scored(W).unwrap());
        assert!(db.history(0).unwrap().is_empty());
        // record_window itself rejects it up front.
        let err = db.record_window(W, &r, &weights(W, &records(W)), 1);
        assert!(matches!(
            err,
            Err(StateError::DuplicateRecord { uid: 1, .. })
        ));
    }

    #[test]
    fn mismatched_windows_are_refused() {
        let (_dir, _path, mut db) = open_temp();
        let r = records(W);
        let w = weights(W, &r);
        assert!(matches!(
            db.record_window(W + 30, &r, &weights(W + 30, &[]), 1),
            Err(StateError::RecordWindowMismatch { window, record_window: W, .. }) if window == W + 30
        ));
        assert!(matches!(
            db.record_window(W + 30, &[], &w, 1),
            Err(StateError::WeightsWindowMismatch {
                weights_window: W,
                ..
            })
        ));
        assert!(matches!(
            db.record_window(W, &r, &w, u64::MAX),
            Err(StateError::OutOfRange { what: "now_ms", .. })
        ));
        assert!(matches!(
            db.is_scored(u64::MAX),
            Err(StateError::OutOfRange { what: "window", .. })
        ));
        assert_eq!(db.last_scored_window().unwrap(), None);
    }

    #[test]
    fn a_garbage_file_is_an_error() {
        let dir = tempfile::tempdir().unwrap();
        for (name, bytes) in [
            ("long", vec![0x5a; 8192]),
            ("short", b"not a database".to_vec()),
        ] {
            let path = dir.path().join(name);
            std::fs::write(&path, &bytes).unwrap();
            match ValidatorDb::open(&path) {
                Err(StateError::NotADatabase { path: p }) => assert_eq!(p, path),
                other => panic!("{name}: {other:?}"),
            }
            assert_eq!(std::fs::read(&path).unwrap(), bytes, "{name} untouched");
        }
        // A directory is not a database either.
        assert!(matches!(
            ValidatorDb::open(dir.path()),
            Err(StateError::Open { .. } | StateError::NotADatabase { .. })
        ));
    }

    #[test]
    fn foreign_and_newer_databases_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let foreign = dir.path().join("foreign.sqlite");
        Connection::open(&foreign)
            .unwrap()
            .execute_batch("CREATE TABLE t (x)")
            .unwrap();
        assert!(matches!(
            ValidatorDb::open(&foreign),
            Err(StateError::ForeignDatabase { .. })
        ));

        let newer = dir.path().join("newer.sqlite");
        drop(ValidatorDb::open(&newer).unwrap());
        Connection::open(&newer)
            .unwrap()
            .pragma_update(None, "user_version", 2)
            .unwrap();
        match ValidatorDb::open(&newer) {
            Err(
                e @ StateError::UnsupportedSchema {
                    found: 2,
                    supported: 1,
                    ..
                },
            ) => {
                assert!(e.to_string().contains("newer.sqlite"), "{e}");
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn corrupt_rows_are_errors() {
        let (_dir, _path, mut db) = open_temp();
        let r = records(W);
        db.record_window(W, &r, &weights(W, &r), 1).unwrap();
        db.conn
            .execute(
                "UPDATE results SET rollouts = NULL WHERE outcome = 'passed'",
                [],
            )
            .unwrap();
        match db.history(0) {
            Err(StateError::Corrupt {
                window,
                uid: 2,
                what,
                ..
            }) => {
                assert_eq!(window, W as i64);
                assert!(what.contains("rollouts"), "{what}");
            }
            other => panic!("{other:?}"),
        }
    }
}
