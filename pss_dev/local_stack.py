"""`pss serve`: the local default stack: `chalice local` recording decisions in SQLite on disk.

In: command-line options (see `parse_args`). Out: a running API on a loopback port whose
decisions are kept in a data folder (a per-user folder by default, `--data DIR` to choose,
`--fresh` to start empty), and a banner with the URL, where the data lives, how to wipe it, the
API key (generated once per data folder and kept there, so a saved curl keeps working after a
restart) and a ready-to-paste curl. Ctrl-C (or SIGTERM) stops within a second,
whatever the server is doing, and returns 0. Never imported by the Lambda function.

Why SQLite and not moto's DynamoDB server (the earlier default): measured over HTTP, moto's
`transact_write_items` copies the whole table per transaction item, so each decision costs
more as the table fills, memory grows without bound, and nothing survives a restart. The
SQLite store keeps the same semantics with real transactions (see `decisions.sqlite`).
Production still records in DynamoDB; only this stack sets `PSS_LOCAL_STORE`.
"""

from __future__ import annotations

import argparse
import functools
import importlib
import json
import os
import re
import secrets
import signal
import sys
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from types import FrameType
from typing import Any, TextIO

from chalicelib.decisions.sqlite import SqliteDecisionStore
from chalicelib.decisions.store import StoreUnavailable
from chalicelib.errors import PolicyError
from chalicelib.settings import SettingsError

PROJECT_DIR = Path(__file__).resolve().parent.parent
APP_NAME = "pss-rules"
DATABASE = "decisions.sqlite3"
# The keyed hash of NHS numbers must not change between runs over the same data, or a
# patient's decisions from yesterday would no longer match today's hash.
PSEUDONYM_KEY_FILE = "pseudonym.key"
# The API key printed in the banner, kept so that a commissioner's saved curl (or an
# integration's config) still works after a restart; `--api-key` overrides it for one run.
API_KEY_FILE = "api.key"
# What a kept API key may look like: what `secrets.token_urlsafe` makes, and nothing that
# `PSS_API_KEYS` (`client:key,...`) would split.
_API_KEY = re.compile(r"[A-Za-z0-9_-]{16,256}", re.ASCII)
# `secrets.token_hex(32)` makes 64 hex digits; any 16 to 256 printable ASCII characters but
# spaces are accepted, so a key an operator put there on purpose (`openssl rand -base64 32`)
# keeps working.
_PSEUDONYM_KEY = re.compile(r"[!-~]{16,256}", re.ASCII)
# The files `--fresh` removes: the database, SQLite's WAL companions and the keys. Nothing
# else in the folder is touched, whatever `--data` points at.
DATA_FILES = (DATABASE, f"{DATABASE}-wal", f"{DATABASE}-shm", PSEUDONYM_KEY_FILE, API_KEY_FILE)
# How long serving threads get to finish once stopping (the server's poll interval bounds it).
POLL_INTERVAL_S = 0.2

# A real referral from the national pack's examples (cetuximab under Blueteq CET5), then the
# design's TAVI referral: the first the pack accepts is printed, so the curl always works.
SAMPLE_REFERRALS: tuple[dict[str, Any], ...] = (
    {"referral_id": "REF-0001", "date": "2025-06-01",
     "patient": {"age": 64, "sex": "male", "nhs_number": "9434765919", "region": "North West"},
     "provider": {"ods_code": "RBV"}, "diagnoses": ["C18.7"],
     "drugs": ["cetuximab", "fluorouracil"],
     "facts": {"ras_status": "wild_type", "metastatic_or_locally_advanced_inoperable": True,
               "prior_chemotherapy_for_metastatic_disease": False, "line_of_therapy": 1,
               "msi_h_or_dmmr": False, "prior_first_line_immunotherapy": False,
               "prior_anti_egfr_therapy": False},
     "attestations": ["prescriber_consultant_or_accredited_trainee"]},
    {"referral_id": "REF-0002", "date": "2025-06-01",
     "patient": {"age": 81, "sex": "female", "nhs_number": "9434765919", "region": "London"},
     "provider": {"ods_code": "RBA"}, "procedures": ["K26.2", "Y53.1"], "diagnoses": ["I35.0"]},
)


@dataclass(frozen=True)
class ServeOptions:
    """What `pss serve` was asked for; `api_key` is None unless `--api-key` was given (then the
    data folder's kept key is used, see `prepare_data`)."""

    host: str
    port: int
    data_dir: Path
    fresh: bool
    client_id: str
    api_key: str | None
    policy_dir: Path | None

    @property
    def database(self) -> Path:
        """The SQLite file holding the decisions."""
        return self.data_dir / DATABASE


def default_data_dir(env: Mapping[str, str] | None = None,
                     platform: str = sys.platform) -> Path:
    """The per-user data folder: XDG on Linux, Application Support on macOS, LOCALAPPDATA on
    Windows (what each platform's own tools use for per-user application data)."""
    env = os.environ if env is None else env
    home = Path(env.get("HOME") or Path.home())
    if platform == "win32":
        base = Path(env["LOCALAPPDATA"]) if env.get("LOCALAPPDATA") else home / "AppData" / "Local"
    elif platform == "darwin":
        base = home / "Library" / "Application Support"
    else:
        base = Path(env["XDG_DATA_HOME"]) if env.get("XDG_DATA_HOME") else home / ".local" / "share"
    return base / APP_NAME


def parse_args(argv: Sequence[str]) -> ServeOptions:
    """Parse `pss serve` options; argparse exits with status 2 on a usage error."""
    parser = argparse.ArgumentParser(prog="pss serve", description="Run the API locally on "
                                     "chalice local, keeping decisions in a SQLite file.")
    parser.add_argument("--host", default="127.0.0.1", help="address to bind (loopback)")
    parser.add_argument("--port", type=_port, default=8000, help="API port; 0 picks a free one")
    parser.add_argument("--data", type=Path, default=None, metavar="DIR",
                        help=f"folder the decisions are kept in (default: {default_data_dir()})")
    parser.add_argument("--fresh", action="store_true",
                        help="start empty: delete the decisions kept in the data folder first "
                             "(and make a new API key)")
    parser.add_argument("--client-id", default="local", help="client id of the printed key")
    parser.add_argument("--api-key", default=None,
                        help=f"API key to accept for this run (default: the data folder's own, "
                             f"made once and kept in DIR/{API_KEY_FILE})")
    parser.add_argument("--policies", type=Path, default=None,
                        help="policy pack folder (default: ./policies when it exists, so local "
                             "edits are served; else the bundle)")
    args = parser.parse_args(list(argv))
    policies = args.policies
    if policies is not None and not policies.is_dir():
        parser.error(f"--policies: `{policies}` is not a folder")  # a usage error: exit 2
    if policies is None and Path("policies").is_dir():
        policies = Path("policies")
    data_dir = (args.data or default_data_dir()).expanduser().resolve()
    return ServeOptions(args.host, args.port, data_dir, args.fresh, args.client_id,
                        args.api_key or None, policies)


def _port(text: str) -> int:
    """`--port`: 0 to 65535 (argparse says so otherwise, instead of a traceback from bind)."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"`{text}` is not a port number") from None
    if not 0 <= value <= 65535:
        raise argparse.ArgumentTypeError(f"must be 0 to 65535, not {value}")
    return value


def serve_main(argv: list[str], out: TextIO | None = None) -> int:
    """Run the local stack until Ctrl-C or SIGTERM; return the exit code (0 when stopped)."""
    options = parse_args(argv)
    stream = out or sys.stdout
    stop = threading.Event()
    previous = signal.signal(signal.SIGTERM, lambda _s, _f: stop.set())
    store: SqliteDecisionStore | None = None
    try:
        api_key = prepare_data(options)
        store = _configure(options, api_key)
        sample = _sample_referral()
        with chalice_local(options.host, options.port) as url:
            stream.write(banner(url, options, api_key, sample))
            stream.flush()
            _wait(stop)
    except KeyboardInterrupt:
        pass  # Ctrl-C while starting: nothing is serving yet, so just stop.
    except OSError as exc:
        # Most often the port is taken (another `pss serve`): say so, no traceback.
        sys.stderr.write(f"pss serve: error: cannot start on {options.host}:{options.port}: "
                         f"{exc.strerror or exc}; try --port 0 for a free port\n")
        return 2
    except (StoreUnavailable, SettingsError) as exc:
        sys.stderr.write(f"pss serve: error: {exc}\n")
        return 2
    except PolicyError as exc:
        # Each problem with its file:line:col, caret and hint, as `pss check` prints them.
        sys.stderr.write(f"{exc.rendered or exc}\npss serve: error: the policy pack does not "
                         "compile; nothing is served\n")
        return 1
    finally:
        signal.signal(signal.SIGTERM, previous)
        if store is not None:
            store.close()  # after the server stopped; a straggling request then gets a 503
    stream.write("stopped\n")
    stream.flush()
    return 0


def _wait(stop: threading.Event) -> None:
    def interrupted(_signal: int, _frame: FrameType | None) -> None:
        stop.set()

    # Ctrl-C sets the event instead of raising somewhere inside a server thread's join.
    previous = signal.signal(signal.SIGINT, interrupted)
    try:
        while not stop.wait(timeout=1.0):
            pass
    finally:
        signal.signal(signal.SIGINT, previous)


def prepare_data(options: ServeOptions) -> str:
    """Create the data folder (wiping its decisions and keys first with `--fresh`), its
    pseudonym key and its API key; return the API key to accept (`--api-key`'s when given,
    else the folder's). `StoreUnavailable` when the folder cannot be used."""
    folder = options.data_dir
    try:
        if options.fresh:
            for name in DATA_FILES:
                (folder / name).unlink(missing_ok=True)
        folder.mkdir(parents=True, exist_ok=True)
        # The secret behind the stored NHS-number hashes.
        pseudonym = _kept_secret(folder / PSEUDONYM_KEY_FILE, lambda: secrets.token_hex(32))
        kept = _kept_secret(folder / API_KEY_FILE, lambda: secrets.token_urlsafe(24))
    except OSError as exc:
        raise StoreUnavailable(f"the data folder `{folder}` cannot be used: "
                               f"{exc.strerror or exc}; choose another with --data DIR",
                               retry_after=60) from None
    if not _PSEUDONYM_KEY.fullmatch(pseudonym):
        # Never replaced: the decisions already kept hash their NHS numbers with it.
        raise StoreUnavailable(f"the pseudonym key kept in `{folder / PSEUDONYM_KEY_FILE}` is "
                               "not one `pss serve` could use (16 to 256 printable ASCII "
                               "characters, no spaces): restore it, or start again with "
                               "--fresh (which deletes the decisions kept there)",
                               retry_after=60)
    if not _API_KEY.fullmatch(kept):
        raise StoreUnavailable(f"the API key kept in `{folder / API_KEY_FILE}` is not one "
                               "`pss serve` made (16 to 256 letters, digits, `_` or `-`): "
                               "delete that file for a new key, or pass --api-key",
                               retry_after=60)
    return options.api_key or kept


def _kept_secret(path: Path, make: Callable[[], str]) -> str:
    """The secret kept in `path`, made by `make` (owner-only, 0600) when there is none yet.
    A kept file readable by others is made owner-only again."""
    try:
        descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        if sys.platform != "win32" and path.stat().st_mode & 0o077:
            path.chmod(0o600)
        # Not ASCII means not ours: the caller's check says so, instead of a decode error.
        return path.read_bytes().decode("ascii", errors="replace").strip()
    secret = make()
    with os.fdopen(descriptor, "w", encoding="ascii") as handle:
        handle.write(secret)
    return secret


def _configure(options: ServeOptions, api_key: str) -> SqliteDecisionStore:
    """Point the app's settings at the SQLite file, reset wiring; return the store it opens."""
    env = {
        "PSS_STAGE": "dev",
        "PSS_LOCAL_STORE": str(options.database),
        "PSS_API_KEYS": f"{options.client_id}:{api_key}",
        "PSS_PSEUDONYM_KEY": (options.data_dir / PSEUDONYM_KEY_FILE).read_text("ascii").strip(),
        "AWS_DEFAULT_REGION": "eu-west-2",
    }
    if options.policy_dir is not None:
        env["PSS_POLICY_DIR"] = str(options.policy_dir.resolve())
    if options.port and "PSS_PUBLIC_BASE_URL" not in os.environ:
        # Card links and the JWT audience name this server (a free port, 0, is known only
        # once bound, after the settings are read: the dev default stands then).
        env["PSS_PUBLIC_BASE_URL"] = f"http://{options.host}:{options.port}"
    os.environ.update(env)

    from chalicelib import load_policy_set
    from chalicelib.api import wiring
    from chalicelib.settings import Settings

    # Read and compiled here, not on the first request, so that a bad setting or a pack that
    # does not compile is said at start, as `pss check` says it (`serve_main`), rather than
    # as a 503 whose cause only the log holds.
    settings = Settings.from_env(os.environ)
    policy_set = load_policy_set(settings.policy_dir)
    wiring.install(wiring.Wiring(settings=settings, policy_set=policy_set))
    # Opened now, not on the first request: a damaged or newer file is reported at start.
    store = wiring.current().store
    assert isinstance(store, SqliteDecisionStore), "PSS_LOCAL_STORE selects the SQLite store"
    # What DynamoDB's TTL does in the background: expired claims are ignored by every read
    # already, so deleting them at start only keeps the file from growing with them.
    store.purge(int(time.time()))
    return store


def _sample_referral() -> dict[str, Any]:
    """The first sample referral the pack accepts (it also proves the pack compiles)."""
    from chalicelib.api import wiring
    from chalicelib.errors import RequestError

    policy_set = wiring.current().policy_set
    for sample in SAMPLE_REFERRALS:
        try:
            policy_set.parse(sample)
        except RequestError:
            continue
        return sample
    return SAMPLE_REFERRALS[-1]


@contextmanager
def chalice_local(host: str, port: int) -> Iterator[str]:
    """Serve `app.py` with chalice's local server on a thread; yield its base URL."""
    from chalice.config import Config
    from chalice.local import ChaliceRequestHandler, create_local_server

    class Handler(ChaliceRequestHandler):
        # The handler writes headers and body in two sends; with Nagle's algorithm on, a
        # keep-alive client's delayed ACK then holds every response for ~40 ms.
        disable_nagle_algorithm = True

    if str(PROJECT_DIR) not in sys.path:
        sys.path.insert(0, str(PROJECT_DIR))
    app_module = importlib.import_module("app")
    config = Config.create(chalice_stage="dev", app_name=APP_NAME,
                           project_dir=str(PROJECT_DIR), chalice_app=app_module.app)
    local = create_local_server(app_module.app, config, host, port)
    server = local.server
    server.RequestHandlerClass = functools.partial(Handler, app_object=app_module.app,
                                                   config=config)
    from chalicelib.studio.http import mount_on_serve

    mount_on_serve(local)  # GET /studio: the commissioner studio, on this port only
    # socketserver joins every request thread on close by default, so one idle keep-alive
    # connection (a browser, a client's pool) would hold Ctrl-C forever. The threads are
    # daemons: they end with the process.
    server.block_on_close = False
    thread = threading.Thread(target=server.serve_forever, name="chalice-local",
                              kwargs={"poll_interval": POLL_INTERVAL_S}, daemon=True)
    thread.start()
    try:
        yield f"http://{host}:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=1)


def banner(url: str, options: ServeOptions, api_key: str, sample: dict[str, Any]) -> str:
    """What `pss serve` prints once the server is up."""
    body = json.dumps(sample)
    kept = ("given with --api-key" if options.api_key
            else f"kept in {options.data_dir / API_KEY_FILE}")
    return (
        f"PSS rules API:  {url}\n"
        f"Decisions:      {options.database} (SQLite, kept across restarts)\n"
        f"Wipe them:      pss serve --fresh, or delete {options.data_dir}\n"
        f"API key:        {api_key} (client {options.client_id}; {kept})\n"
        f"OpenAPI:        {url}/openapi.json\n"
        f"Studio:         {url}/studio\n"
        "\nTry it:\n"
        f"curl -s -X POST {url}/v1/decisions \\\n"
        f"  -H 'x-api-key: {api_key}' -H 'content-type: application/json' \\\n"
        f"  -d '{body}'\n"
        "\nCtrl-C stops everything.\n"
    )


if __name__ == "__main__":
    raise SystemExit(serve_main(sys.argv[1:]))
