"""SQLite specifics: durable across reopen, atomic across connections, refuses what it can't read."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from chalicelib.decisions.sqlite import SCHEMA_VERSION, SqliteDecisionStore
from chalicelib.decisions.store import StoreUnavailable, VersionConflict
from tests.decisions.test_store_contract import ID, NOW, WRITERS, _together, claim, version


def test_everything_written_is_there_after_reopening(tmp_path: Path) -> None:
    path = tmp_path / "data" / "decisions.sqlite3"
    store = SqliteDecisionStore(path)
    store.create(version(1), claim(), NOW)
    store.append(version(2))
    assert store.claim_once("jti#iss#1", NOW + 60, NOW)
    store.close()

    again = SqliteDecisionStore(path)
    assert again.versions(ID) == [version(1), version(2)]
    assert again.latest(ID) == version(2)
    assert again.claim("epr", "k", NOW) == claim()
    assert again.by_referral("epr", "REF-1") == [version(1), version(2)]
    assert again.claim_once("jti#iss#1", NOW + 60, NOW + 1) is False
    again.close()


def test_a_commit_is_visible_to_another_connection_before_close(tmp_path: Path) -> None:
    # What `recorded: true` relies on: the row is committed when `create` returns.
    path = tmp_path / "decisions.sqlite3"
    store = SqliteDecisionStore(path)
    store.create(version(1), None, NOW)
    with sqlite3.connect(path) as other:
        assert other.execute("SELECT version FROM latest").fetchall() == [(1,)]
    store.close()


def test_stores_on_one_file_do_not_lose_or_duplicate_versions(tmp_path: Path) -> None:
    # Each thread has its own connection: SQLite's write lock (BEGIN IMMEDIATE) alone keeps
    # the pointer condition and the insert atomic, as it would against another process.
    path = tmp_path / "decisions.sqlite3"
    SqliteDecisionStore(path).create(version(1), None, NOW)

    def race(i: int) -> int:
        store = SqliteDecisionStore(path)
        try:
            for _ in range(50):
                latest = store.latest(ID)
                assert latest is not None
                try:
                    store.append(version(latest.version + 1, client=f"writer{i}"))
                    return latest.version + 1
                except VersionConflict:
                    continue
            raise AssertionError("never won a race")
        finally:
            store.close()

    won = _together(WRITERS, race)
    assert sorted(won) == list(range(2, WRITERS + 2))
    history = SqliteDecisionStore(path).versions(ID)
    assert [v.version for v in history] == list(range(1, WRITERS + 2))
    assert sorted(v.client_id for v in history[1:]) == sorted(f"writer{i}" for i in range(WRITERS))


def test_purge_deletes_only_expired_claims(sqlite_store: SqliteDecisionStore) -> None:
    sqlite_store.create(version(1), claim(key="old", expires=NOW + 10), NOW)
    other = "01JD0000000000000000000002"
    sqlite_store.create(version(1, decision_id=other),
                        claim(key="new", expires=NOW + 100), NOW)
    sqlite_store.claim_once("jti#a", NOW + 10, NOW)
    sqlite_store.claim_once("jti#b", NOW + 100, NOW)
    assert sqlite_store.purge(NOW + 10) == 2
    assert sqlite_store.claim("epr", "new", NOW + 10) is not None
    assert sqlite_store.claim_once("jti#b", NOW + 200, NOW + 11) is False
    assert sqlite_store.versions(ID) == [version(1)]  # decisions never expire


def test_a_file_from_a_newer_schema_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "decisions.sqlite3"
    with sqlite3.connect(path) as db:
        db.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    with pytest.raises(StoreUnavailable, match="newer"):
        SqliteDecisionStore(path)


def test_a_file_that_is_not_a_database_is_unavailable_not_a_crash(tmp_path: Path) -> None:
    path = tmp_path / "decisions.sqlite3"
    path.write_bytes(b"not a database, just text " * 100)
    with pytest.raises(StoreUnavailable, match="cannot be opened"):
        SqliteDecisionStore(path)


def test_a_closed_store_answers_unavailable(tmp_path: Path) -> None:
    # `pss serve` closes the store on Ctrl-C while a request thread may still be running:
    # that request must get a 503, never `recorded: true`.
    store = SqliteDecisionStore(tmp_path / "decisions.sqlite3")
    store.close()
    with pytest.raises(StoreUnavailable):
        store.create(version(1), None, NOW)
    with pytest.raises(StoreUnavailable):
        store.latest(ID)
