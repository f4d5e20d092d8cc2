"""The SQLite `DecisionStore`: the embedded, on-disk store of `pss serve` (never production).

In: the path of a database file (created with its tables on first use). Out: as
`store.DecisionStore`, with the guarantees the DynamoDB store gets from conditional writes and
transactions, here from SQLite transactions:

| table      | key                      | holds                                            |
|------------|--------------------------|--------------------------------------------------|
| versions   | (decision_id, version)   | one immutable decision version (JSON documents)  |
| latest     | decision_id              | the latest pointer: the current version number   |
| claims     | (client_id, key)         | idempotency claims, `expires_at` in epoch seconds|
| once       | key                      | single-use claims (JWT `jti`), `expires_at`      |
| (index)    | versions(client_id, referral_id, created_at) | the referral index       |

Every write is one `BEGIN IMMEDIATE` transaction: it takes SQLite's write lock before reading
the condition (pointer at n - 1, no live claim), so check-and-write is atomic even against
another process on the same file. The journal is WAL with `synchronous=FULL`: a commit is on
disk before `create`/`append` return, so `recorded: true` survives a crash or power loss.
Expired claims are ignored by reads and replaced by writes, as DynamoDB TTL lags; `purge`
deletes them.

One connection per store, guarded by a lock: the local server runs a thread per request, and a
connection per thread would be opened (and leaked) per request. SQLite serialises writers
anyway; a read holds the lock for well under a millisecond.
"""

from __future__ import annotations

import json
import sqlite3
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from chalicelib.decisions.store import (
    DecisionVersion,
    IdempotencyClaim,
    IdempotencyKeyTaken,
    StoreUnavailable,
    VersionConflict,
)

# Bump when a table changes shape; `_open` refuses a file written by a newer schema. Adding a
# table (e.g. feedback) needs no bump: `CREATE TABLE IF NOT EXISTS` adds it to old files.
SCHEMA_VERSION = 1
SCHEMA = (
    """CREATE TABLE IF NOT EXISTS versions (
        decision_id TEXT NOT NULL, version INTEGER NOT NULL, client_id TEXT NOT NULL,
        created_at TEXT NOT NULL, request_digest TEXT NOT NULL, inputs TEXT NOT NULL,
        result TEXT NOT NULL, referral_id TEXT, nhs_number_hash TEXT, hook_instance TEXT,
        PRIMARY KEY (decision_id, version)) WITHOUT ROWID""",
    """CREATE INDEX IF NOT EXISTS versions_by_referral
        ON versions (client_id, referral_id, created_at) WHERE referral_id IS NOT NULL""",
    """CREATE TABLE IF NOT EXISTS latest (
        decision_id TEXT PRIMARY KEY, version INTEGER NOT NULL, updated_at TEXT NOT NULL
        ) WITHOUT ROWID""",
    """CREATE TABLE IF NOT EXISTS claims (
        client_id TEXT NOT NULL, key TEXT NOT NULL, request_digest TEXT NOT NULL,
        decision_id TEXT NOT NULL, expires_at INTEGER NOT NULL, version INTEGER NOT NULL,
        PRIMARY KEY (client_id, key)) WITHOUT ROWID""",
    """CREATE TABLE IF NOT EXISTS once (
        key TEXT PRIMARY KEY, expires_at INTEGER NOT NULL) WITHOUT ROWID""",
)
_COLUMNS = ("decision_id, version, client_id, created_at, request_digest, inputs, result, "
            "referral_id, nhs_number_hash, hook_instance")
# How long a write waits for another process's write lock before answering 503.
BUSY_TIMEOUT_S = 5.0


class SqliteDecisionStore:
    """Decisions in one SQLite file; every write that must be atomic is one transaction."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._lock = threading.Lock()
        self._db = _open(path)

    def close(self) -> None:
        """Close the connection (checkpointing the WAL into the database file)."""
        with self._lock:
            self._db.close()

    # --- writes ---------------------------------------------------------------------------

    def create(self, first: DecisionVersion, claim: IdempotencyClaim | None,
               now_epoch: int) -> None:
        """Insert version 1, the pointer and the claim in one transaction."""
        with self._write() as db:
            _check_claim(db, claim, now_epoch)
            if db.execute("SELECT 1 FROM latest WHERE decision_id = ?",
                          (first.decision_id,)).fetchone() is not None:
                raise VersionConflict(f"decision `{first.decision_id}` already exists")
            _insert_version(db, first)
            db.execute("INSERT INTO latest VALUES (?, ?, ?)",
                       (first.decision_id, first.version, first.created_at))
            _put_claim(db, claim)

    def append(self, version: DecisionVersion, claim: IdempotencyClaim | None = None,
               now_epoch: int = 0) -> None:
        """Insert version n (and its claim) and move the pointer from n - 1, in one
        transaction."""
        with self._write() as db:
            _check_claim(db, claim, now_epoch)
            moved = db.execute(
                "UPDATE latest SET version = ?, updated_at = ? "
                "WHERE decision_id = ? AND version = ?",
                (version.version, version.created_at, version.decision_id, version.version - 1))
            if moved.rowcount != 1:
                raise VersionConflict(f"decision `{version.decision_id}` moved on")
            _insert_version(db, version)
            _put_claim(db, claim)

    def claim_once(self, key: str, expires_at: int, now_epoch: int) -> bool:
        """Claim `key` until `expires_at`; False while another live claim holds it."""
        with self._write() as db:
            held = db.execute("SELECT expires_at FROM once WHERE key = ?", (key,)).fetchone()
            if held is not None and held[0] > now_epoch:
                return False
            db.execute("INSERT OR REPLACE INTO once VALUES (?, ?)", (key, expires_at))
            return True

    def purge(self, now_epoch: int) -> int:
        """Delete expired idempotency and single-use claims (DynamoDB's TTL); return how many."""
        with self._write() as db:
            gone = db.execute("DELETE FROM claims WHERE expires_at <= ?", (now_epoch,)).rowcount
            gone += db.execute("DELETE FROM once WHERE expires_at <= ?", (now_epoch,)).rowcount
            return gone

    @contextmanager
    def _write(self) -> Iterator[sqlite3.Connection]:
        """One immediate transaction: committed on return, rolled back on any exception."""
        with self._lock:
            try:
                self._db.execute("BEGIN IMMEDIATE")
            except sqlite3.Error as exc:
                raise _unavailable(exc) from None
            try:
                yield self._db
                self._db.execute("COMMIT")
            except BaseException as exc:
                if self._db.in_transaction:
                    self._db.execute("ROLLBACK")
                if isinstance(exc, sqlite3.Error):
                    raise _unavailable(exc) from None
                raise

    # --- reads ----------------------------------------------------------------------------

    def latest(self, decision_id: str) -> DecisionVersion | None:
        """Follow the pointer to the latest version (one statement, one snapshot)."""
        found = self._read(f"SELECT {_COLUMNS} FROM versions JOIN latest USING (decision_id, "
                           "version) WHERE decision_id = ?", (decision_id,))
        return found[0] if found else None

    def get(self, decision_id: str, version: int) -> DecisionVersion | None:
        """One version, or None."""
        found = self._read(f"SELECT {_COLUMNS} FROM versions WHERE decision_id = ? "
                           "AND version = ?", (decision_id, version))
        return found[0] if found else None

    def versions(self, decision_id: str) -> list[DecisionVersion]:
        """Every version of a decision, oldest first."""
        return self._read(f"SELECT {_COLUMNS} FROM versions WHERE decision_id = ? "
                          "ORDER BY version", (decision_id,))

    def claim(self, client_id: str, key: str, now_epoch: int) -> IdempotencyClaim | None:
        """The live idempotency claim, or None."""
        with self._lock:
            try:
                row = self._db.execute(
                    "SELECT request_digest, decision_id, expires_at, version FROM claims "
                    "WHERE client_id = ? AND key = ? AND expires_at > ?",
                    (client_id, key, now_epoch)).fetchone()
            except sqlite3.Error as exc:
                raise _unavailable(exc) from None
        return IdempotencyClaim(client_id, key, *row) if row else None

    def by_referral(self, client_id: str, referral_id: str) -> list[DecisionVersion]:
        """Versions recorded by a client for a referral, oldest first."""
        return self._read(f"SELECT {_COLUMNS} FROM versions WHERE client_id = ? AND "
                          "referral_id = ? ORDER BY created_at, decision_id, version",
                          (client_id, referral_id))

    def _read(self, sql: str, args: tuple[Any, ...]) -> list[DecisionVersion]:
        with self._lock:
            try:
                rows = self._db.execute(sql, args).fetchall()
            except sqlite3.Error as exc:
                raise _unavailable(exc) from None
        return [_version_from(row) for row in rows]


def _open(path: Path) -> sqlite3.Connection:
    """Open (or create) the database file in WAL mode with the schema in place."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        # isolation_level=None: no implicit transactions; `_write` issues BEGIN/COMMIT itself.
        db = sqlite3.connect(path, timeout=BUSY_TIMEOUT_S, isolation_level=None,
                             check_same_thread=False)
        db.execute("PRAGMA journal_mode=WAL")
        db.execute("PRAGMA synchronous=FULL")
        found = db.execute("PRAGMA user_version").fetchone()[0]
        if found > SCHEMA_VERSION:
            db.close()
            raise StoreUnavailable(f"the decision store `{path}` was written by a newer PSS "
                                   f"(schema {found} > {SCHEMA_VERSION})", retry_after=60)
        db.execute("BEGIN IMMEDIATE")
        for statement in SCHEMA:
            db.execute(statement)
        db.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
        db.execute("COMMIT")
    except (sqlite3.Error, OSError) as exc:
        raise StoreUnavailable(f"the decision store `{path}` cannot be opened: {exc}",
                               retry_after=60) from None
    return db


def _check_claim(db: sqlite3.Connection, claim: IdempotencyClaim | None,
                 now_epoch: int) -> None:
    """`IdempotencyKeyTaken` when a live claim holds the client's key (checked first, as the
    DynamoDB transaction reports it first)."""
    if claim is None:
        return
    held = db.execute("SELECT expires_at FROM claims WHERE client_id = ? AND key = ?",
                      (claim.client_id, claim.key)).fetchone()
    if held is not None and held[0] > now_epoch:
        raise IdempotencyKeyTaken(f"idempotency key `{claim.key}` is already used")


def _put_claim(db: sqlite3.Connection, claim: IdempotencyClaim | None) -> None:
    # An expired claim not yet purged is taken over, as DynamoDB's condition does.
    if claim is not None:
        db.execute("INSERT OR REPLACE INTO claims VALUES (?, ?, ?, ?, ?, ?)",
                   (claim.client_id, claim.key, claim.request_digest, claim.decision_id,
                    claim.expires_at, claim.version))


def _insert_version(db: sqlite3.Connection, v: DecisionVersion) -> None:
    # The primary key refuses a second row for (id, n): a version is immutable.
    db.execute(f"INSERT INTO versions ({_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
               (v.decision_id, v.version, v.client_id, v.created_at, v.request_digest,
                json.dumps(v.inputs, sort_keys=True), json.dumps(v.result, sort_keys=True),
                v.referral_id, v.nhs_number_hash, v.hook_instance))


def _version_from(row: tuple[Any, ...]) -> DecisionVersion:
    return DecisionVersion(
        decision_id=row[0], version=row[1], client_id=row[2], created_at=row[3],
        request_digest=row[4], inputs=json.loads(row[5]), result=json.loads(row[6]),
        referral_id=row[7], nhs_number_hash=row[8], hook_instance=row[9])


def _unavailable(exc: sqlite3.Error) -> StoreUnavailable:
    # "database is locked" (another process held the write lock past the busy timeout) is
    # worth retrying soon; a full disk or a damaged file is not.
    busy = isinstance(exc, sqlite3.OperationalError) and "locked" in str(exc)
    return StoreUnavailable(f"the decision store failed ({type(exc).__name__}: {exc})",
                            retry_after=1 if busy else 5)
