"""How `pss serve` chooses its store and data folder: SQLite only on a local stage."""

from __future__ import annotations

from pathlib import Path

import pytest

from chalicelib.api.wiring import Wiring
from chalicelib.decisions.sqlite import SqliteDecisionStore
from chalicelib.decisions.store import StoreUnavailable
from chalicelib.settings import Settings, SettingsError
from pss_dev.local_stack import (
    API_KEY_FILE,
    DATABASE,
    PSEUDONYM_KEY_FILE,
    ServeOptions,
    default_data_dir,
    parse_args,
    prepare_data,
)


def test_the_local_store_is_chosen_only_when_asked_and_never_in_prod(tmp_path: Path) -> None:
    assert Settings.from_env({}).local_store is None
    path = tmp_path / "d.sqlite3"
    wiring = Wiring({"PSS_LOCAL_STORE": str(path)})
    store = wiring.store
    assert isinstance(store, SqliteDecisionStore) and store.path == path and path.is_file()
    store.close()
    with pytest.raises(SettingsError, match="PSS_LOCAL_STORE"):
        Settings.from_env({"PSS_STAGE": "prod", "PSS_PSEUDONYM_KEY": "k",
                           "PSS_LOCAL_STORE": str(path)})


@pytest.mark.parametrize(("platform", "env", "expected"), [
    ("linux", {"HOME": "/h"}, "/h/.local/share/pss-rules"),
    ("linux", {"HOME": "/h", "XDG_DATA_HOME": "/x"}, "/x/pss-rules"),
    ("darwin", {"HOME": "/h"}, "/h/Library/Application Support/pss-rules"),
    ("win32", {"HOME": "/h", "LOCALAPPDATA": "/l"}, "/l/pss-rules"),
])
def test_the_default_data_folder_is_per_user(platform: str, env: dict[str, str],
                                             expected: str) -> None:
    assert default_data_dir(env, platform) == Path(expected)


def test_data_options(tmp_path: Path) -> None:
    options = parse_args(["--data", str(tmp_path / "d"), "--fresh", "--port", "0"])
    assert (options.data_dir, options.fresh, options.port) == (tmp_path / "d", True, 0)
    assert options.database == tmp_path / "d" / DATABASE
    assert parse_args([]).fresh is False


def _options(folder: Path, fresh: bool, api_key: str | None = "key") -> ServeOptions:
    return ServeOptions("127.0.0.1", 0, folder, fresh, "local", api_key, None)


def test_the_api_key_is_made_once_per_data_folder_owner_only_and_kept(tmp_path: Path) -> None:
    assert parse_args(["--data", str(tmp_path)]).api_key is None
    first = prepare_data(_options(tmp_path, fresh=False, api_key=None))
    kept = tmp_path / API_KEY_FILE
    assert kept.read_text().strip() == first and len(first) >= 32
    assert kept.stat().st_mode & 0o777 == 0o600
    assert prepare_data(_options(tmp_path, fresh=False, api_key=None)) == first
    assert prepare_data(_options(tmp_path / "other", fresh=False, api_key=None)) != first


def test_fresh_makes_a_new_api_key_and_a_given_one_wins_without_replacing_it(
        tmp_path: Path) -> None:
    first = prepare_data(_options(tmp_path, fresh=False, api_key=None))
    assert prepare_data(_options(tmp_path, fresh=False, api_key="given-key")) == "given-key"
    assert (tmp_path / API_KEY_FILE).read_text().strip() == first
    second = prepare_data(_options(tmp_path, fresh=True, api_key=None))
    assert second != first and (tmp_path / API_KEY_FILE).read_text().strip() == second


def test_a_kept_api_key_readable_by_others_is_made_owner_only_again(tmp_path: Path) -> None:
    first = prepare_data(_options(tmp_path, fresh=False, api_key=None))
    (tmp_path / API_KEY_FILE).chmod(0o644)
    assert prepare_data(_options(tmp_path, fresh=False, api_key=None)) == first
    assert (tmp_path / API_KEY_FILE).stat().st_mode & 0o777 == 0o600


@pytest.mark.parametrize("text", ["", "short", "has:colon-and,comma-0123456789", "é" * 20])
def test_a_kept_api_key_pss_serve_did_not_make_is_refused_with_what_to_do(
        tmp_path: Path, text: str) -> None:
    (tmp_path / API_KEY_FILE).write_text(text, encoding="utf-8")
    with pytest.raises(StoreUnavailable, match="delete that file for a new key"):
        prepare_data(_options(tmp_path, fresh=False, api_key=None))


def test_the_pseudonym_key_is_made_once_and_kept_private(tmp_path: Path) -> None:
    prepare_data(_options(tmp_path, fresh=False))
    key = tmp_path / PSEUDONYM_KEY_FILE
    first = key.read_text()
    assert len(first) == 64 and key.stat().st_mode & 0o077 == 0
    prepare_data(_options(tmp_path, fresh=False))
    assert key.read_text() == first


@pytest.mark.parametrize("text", ["", "too-short", "é" * 40, "x" * 40 + "\x00", "a b" * 10])
def test_a_kept_pseudonym_key_pss_serve_did_not_make_is_refused_not_replaced(
        tmp_path: Path, text: str) -> None:
    (tmp_path / PSEUDONYM_KEY_FILE).write_text(text, encoding="utf-8")
    with pytest.raises(StoreUnavailable, match="restore it, or start again with --fresh"):
        prepare_data(_options(tmp_path, fresh=False, api_key=None))
    assert (tmp_path / PSEUDONYM_KEY_FILE).read_text(encoding="utf-8") == text


def test_an_operators_base64_pseudonym_key_is_kept_and_used(tmp_path: Path) -> None:
    key = "q8Jx0ZkR2y+5/vB7mT9wLh3nD6sF1cA4eG8iK0oP2uQ="  # openssl rand -base64 32
    (tmp_path / PSEUDONYM_KEY_FILE).write_text(key, encoding="ascii")
    prepare_data(_options(tmp_path, fresh=False, api_key=None))
    assert (tmp_path / PSEUDONYM_KEY_FILE).read_text(encoding="ascii") == key


def test_fresh_deletes_the_stores_files_and_nothing_else(tmp_path: Path) -> None:
    prepare_data(_options(tmp_path, fresh=False))
    old_key = (tmp_path / PSEUDONYM_KEY_FILE).read_text()
    for name in (DATABASE, f"{DATABASE}-wal", "notes.txt"):
        (tmp_path / name).write_text("x")
    prepare_data(_options(tmp_path, fresh=True))
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(
        [API_KEY_FILE, "notes.txt", PSEUDONYM_KEY_FILE])
    assert (tmp_path / PSEUDONYM_KEY_FILE).read_text() != old_key


def test_a_data_folder_that_is_a_file_is_refused_with_the_option_to_change(
        tmp_path: Path) -> None:
    (tmp_path / "taken").write_text("a file, not a folder")
    with pytest.raises(StoreUnavailable, match="--data DIR"):
        prepare_data(_options(tmp_path / "taken", fresh=False))
