"""End to end: `pss serve` as a child process on a free port, driven over real HTTP.

The stack is started as a developer starts it (`python -m chalicelib.cli serve`), with a data
folder of the test's own; its banner gives the URL and key. SIGINT must stop it with status 0
within 2 s whatever it is doing, and what it recorded must be there when it starts again.
The launcher is the one `benchmarks/serve.py` drives, so both measure the same thing.
"""

from __future__ import annotations

import signal
import socket
import sqlite3
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest

from benchmarks.serve import SERVE, Client, Server, serve

ROOT = Path(__file__).resolve().parents[2]
PACK = ROOT / "tests" / "fixtures" / "pack"
STOP_WITHIN_S = 2  # the promise for Ctrl-C, whatever the server's state

pytestmark = pytest.mark.slow


def _serve(data: Path, *more: str) -> Any:
    return serve(["--data", str(data), "--policies", str(PACK), *more])


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    with _serve(tmp_path_factory.mktemp("serve") / "data") as server:
        yield server


def _call(server: Server, method: str, path: str, body: Any = None) -> tuple[int, Any]:
    client = Client(server)
    try:
        status, payload, _ms = client.call(method, path, body)
    finally:
        client.close()
    return status, payload


def _with_key(server: Server, key: str) -> Server:
    """The same server, called with another API key."""
    return Server(server.process, server.url, key, server.sample)


def _sigint_and_wait(process: subprocess.Popen[str]) -> int:
    process.send_signal(signal.SIGINT)
    return process.wait(timeout=STOP_WITHIN_S)


def test_the_banner_says_where_data_lives_and_how_to_wipe_it(
        stack: Server, tmp_path_factory: pytest.TempPathFactory) -> None:
    text = "".join(stack.lines)
    database = next(line.split()[1] for line in stack.lines if line.startswith("Decisions:"))
    assert Path(database).name == "decisions.sqlite3" and Path(database).is_file()
    assert "kept across restarts" in text
    assert f"pss serve --fresh, or delete {Path(database).parent}" in text


def test_the_printed_curl_records_a_decision_readable_over_http_and_on_disk(
        stack: Server) -> None:
    status, created = _call(stack, "POST", "/v1/decisions", stack.sample)
    assert status == 201 and created["recorded"] is True
    decision_id = created["decision_id"]
    # the decision as recorded, plus the CDS Hooks feedback on its cards (none here)
    assert _call(stack, "GET", f"/v1/decisions/{decision_id}") == (200, {**created, "feedback": []})

    database = next(line.split()[1] for line in stack.lines if line.startswith("Decisions:"))
    with sqlite3.connect(database) as db:
        row = db.execute("SELECT client_id, inputs, result, nhs_number_hash FROM versions "
                         "WHERE decision_id = ?", (decision_id,)).fetchone()
    assert row[0] == "local"
    assert '"reasons"' in row[2]
    assert "9434765919" not in "".join(str(column) for column in row)
    assert row[3].startswith("hmac-sha256:")


def test_versions_over_http(stack: Server) -> None:
    _, created = _call(stack, "POST", "/v1/decisions", stack.sample)
    path = f"/v1/decisions/{created['decision_id']}/versions"
    status, second = _call(stack, "POST", path, {"attestations": ["mdt"], "facts": {"who": 1}})
    assert (status, second["version"], second["eligibility"]) == (201, 2, "eligible")
    status, history = _call(stack, "GET", path)
    assert [v["version"] for v in history["versions"]] == [1, 2]


def test_auth_and_open_routes_over_http(stack: Server) -> None:
    wrong = _with_key(stack, "wrong")
    status, body = _call(wrong, "POST", "/v1/decisions", stack.sample)
    assert (status, body["error"]["code"]) == (401, "unauthorized")
    assert _call(stack, "GET", "/v1/health")[0] == 200
    status, document = _call(stack, "GET", "/openapi.json")
    assert status == 200 and document["openapi"] == "3.1.0"


def test_ctrl_c_stops_promptly_even_with_an_idle_keep_alive_connection_and_a_half_request(
        stack: Server) -> None:
    # A client holding its connection open, and another that sent half a request: each keeps
    # a server thread blocked on a read, which once made shutdown wait for them forever.
    idle = Client(stack)
    assert idle.call("GET", "/v1/health")[0] == 200
    parts = urlsplit(stack.url)
    half = socket.create_connection((parts.hostname, parts.port))
    half.sendall(b"POST /v1/decisions HTTP/1.1\r\nHost: x\r\nContent-Length: 500\r\n\r\n{")
    try:
        assert _sigint_and_wait(stack.process) == 0
    finally:
        half.close()
        idle.close()
    with pytest.raises(urllib.error.URLError):
        urllib.request.urlopen(stack.url + "/v1/health", timeout=5)


def test_a_decision_and_all_its_versions_survive_a_restart(tmp_path: Path) -> None:
    data = tmp_path / "data"
    with _serve(data) as first:
        _, created = _call(first, "POST", "/v1/decisions", first.sample)
        path = f"/v1/decisions/{created['decision_id']}/versions"
        _, second = _call(first, "POST", path, {"attestations": ["mdt"], "facts": {"who": 1}})
        _, before = _call(first, "GET", path)
        assert _sigint_and_wait(first.process) == 0

    assert first.process.poll() == 0  # what answers next is a new process
    with _serve(data) as again:
        # The key is kept with the data: the curl printed yesterday still works today.
        assert again.key == first.key and again.process.pid != first.process.pid
        assert _call(again, "GET", path) == (200, before)
        assert [v["version"] for v in before["versions"]] == [1, 2]
        assert before["versions"][1] == second
        # The pseudonym key is kept with the data: the same patient hashes the same way.
        _, third = _call(again, "POST", "/v1/decisions", again.sample)
        database = data / "decisions.sqlite3"
        with sqlite3.connect(database) as db:
            hashes = {row[0] for row in db.execute(
                "SELECT nhs_number_hash FROM versions WHERE version = 1 AND decision_id IN "
                "(?, ?)", (created["decision_id"], third["decision_id"]))}
        assert len(hashes) == 1

    with _serve(data, "--fresh") as fresh:
        assert fresh.key != first.key
        assert _call(_with_key(fresh, first.key), "POST", "/v1/decisions", fresh.sample)[0] == 401
        assert _call(fresh, "GET", path)[0] == 404
    assert (data / "api.key").stat().st_mode & 0o777 == 0o600
    assert (data / "api.key").read_text().strip() == fresh.key


def test_an_api_key_given_on_the_command_line_is_used_and_the_kept_one_left_alone(
        tmp_path: Path) -> None:
    data = tmp_path / "data"
    with _serve(data) as kept:
        pass
    with _serve(data, "--api-key", "given-on-the-command-line") as given:
        assert given.key == "given-on-the-command-line"
        assert "given with --api-key" in "".join(given.lines)
        assert _call(given, "POST", "/v1/decisions?dry_run=true", given.sample)[0] == 200
    with _serve(data) as again:
        assert again.key == kept.key
        assert f"kept in {data / 'api.key'}" in "".join(again.lines)


def test_ctrl_c_soon_after_starting_stops_promptly(tmp_path: Path) -> None:
    # Somewhere in the imports, the pack compile or opening the store: whichever it is, the
    # process is gone in time. (Python's own KeyboardInterrupt may print a traceback if the
    # signal lands while the interpreter is still importing `chalicelib`.)
    process = subprocess.Popen([*SERVE, "--port", "0", "--data", str(tmp_path)], cwd=ROOT,
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        time.sleep(1.5)
        assert process.poll() is None
        process.send_signal(signal.SIGINT)
        process.wait(timeout=STOP_WITHIN_S)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()


def test_a_data_folder_the_store_cannot_open_is_a_usage_error(tmp_path: Path) -> None:
    (tmp_path / "decisions.sqlite3").write_bytes(b"not a database " * 100)
    done = subprocess.run([*SERVE, "--port", "0", "--data", str(tmp_path)], cwd=ROOT,
                          capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 2
    assert "cannot be opened" in done.stderr and "Traceback" not in done.stderr


def test_the_command_line_entry_runs_serve() -> None:
    done = subprocess.run([sys.executable, "-m", "chalicelib.cli", "serve", "--help"],
                          cwd=ROOT, capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 0
    assert "--data DIR" in done.stdout and "--fresh" in done.stdout


def test_a_pack_that_does_not_compile_is_said_at_start_with_its_line(tmp_path: Path) -> None:
    broken = tmp_path / "pack"
    broken.mkdir()
    (broken / "bad.pss").write_text("this is not a pack\n", encoding="utf-8")
    done = subprocess.run([*SERVE, "--port", "0", "--data", str(tmp_path / "data"),
                           "--policies", str(broken)], cwd=ROOT, capture_output=True, text=True,
                          timeout=120, check=False)
    assert done.returncode == 1
    assert "bad.pss:1:1: error" in done.stderr and "^^^^" in done.stderr
    assert "does not compile; nothing is served" in done.stderr
    assert "Traceback" not in done.stderr


def test_a_port_out_of_range_is_a_usage_error() -> None:
    done = subprocess.run([*SERVE, "--port", "99999"], cwd=ROOT, capture_output=True,
                          text=True, timeout=60, check=False)
    assert done.returncode == 2
    assert "argument --port: must be 0 to 65535, not 99999" in done.stderr
    assert "Traceback" not in done.stderr


def test_a_policies_folder_that_does_not_exist_is_a_usage_error(tmp_path: Path) -> None:
    done = subprocess.run([*SERVE, "--port", "0", "--data", str(tmp_path / "data"),
                           "--policies", str(tmp_path / "nowhere")], cwd=ROOT,
                          capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 2
    assert "is not a folder" in done.stderr and "Traceback" not in done.stderr
