"""`pss serve`: the local default stack: moto's DynamoDB in-process plus `chalice local`.

In: command-line options (see `serve_main`). Out: a running API on a loopback port backed by
a real DynamoDB API (moto's server) holding the decisions table, and a banner with the URL,
a generated API key and a ready-to-paste curl. Ctrl-C (or SIGTERM) stops both servers and
returns 0. Never imported by the Lambda function.
"""

from __future__ import annotations

import argparse
import importlib
import json
import logging
import os
import secrets
import signal
import sys
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from types import FrameType
from typing import Any, TextIO

PROJECT_DIR = Path(__file__).resolve().parent.parent

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
    """What `pss serve` was asked for."""

    host: str
    port: int
    dynamodb_port: int
    table: str
    client_id: str
    api_key: str
    policy_dir: Path | None


def parse_args(argv: Sequence[str]) -> ServeOptions:
    """Parse `pss serve` options; argparse exits with status 2 on a usage error."""
    parser = argparse.ArgumentParser(prog="pss serve", description="Run the API locally on "
                                     "chalice local, with decisions in moto's DynamoDB.")
    parser.add_argument("--host", default="127.0.0.1", help="address to bind (loopback)")
    parser.add_argument("--port", type=int, default=8000, help="API port; 0 picks a free one")
    parser.add_argument("--dynamodb-port", type=int, default=0,
                        help="port of the embedded DynamoDB (moto); 0 picks a free one")
    parser.add_argument("--table", default="pss-decisions-dev", help="decisions table name")
    parser.add_argument("--client-id", default="local", help="client id of the printed key")
    parser.add_argument("--api-key", default=None,
                        help="API key to accept (default: a new random key, printed)")
    parser.add_argument("--policies", type=Path, default=None,
                        help="policy pack folder (default: ./policies when it exists, so local "
                             "edits are served; else the bundle)")
    args = parser.parse_args(list(argv))
    policies = args.policies
    if policies is None and Path("policies").is_dir():
        policies = Path("policies")
    return ServeOptions(args.host, args.port, args.dynamodb_port, args.table, args.client_id,
                        args.api_key or secrets.token_urlsafe(24), policies)


def serve_main(argv: list[str], out: TextIO | None = None) -> int:
    """Run the local stack until Ctrl-C or SIGTERM; return the exit code (0 when stopped)."""
    options = parse_args(argv)
    stream = out or sys.stdout
    stop = threading.Event()
    previous = signal.signal(signal.SIGTERM, lambda _s, _f: stop.set())
    try:
        with embedded_dynamodb(options.host, options.dynamodb_port) as endpoint:
            _configure(options, endpoint)
            sample = _sample_referral()
            with chalice_local(options.host, options.port) as url:
                stream.write(banner(url, endpoint, options, sample))
                stream.flush()
                _wait(stop)
    except OSError as exc:
        # Most often the port is taken (another `pss serve`): say so, no traceback.
        sys.stderr.write(f"pss serve: error: cannot start on {options.host}:{options.port}: "
                         f"{exc.strerror or exc}; try --port 0 for a free port\n")
        return 2
    finally:
        signal.signal(signal.SIGTERM, previous)
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


@contextmanager
def embedded_dynamodb(host: str, port: int) -> Iterator[str]:
    """Start moto's DynamoDB server on `host:port` in this process; yield its endpoint URL."""
    from moto.server import ThreadedMotoServer

    # moto's werkzeug server would log every DynamoDB call beside our own access log.
    logging.getLogger("werkzeug").setLevel(logging.ERROR)

    server = ThreadedMotoServer(ip_address=host, port=port, verbose=False)
    server.start()
    try:
        bound_host, bound_port = server.get_host_and_port()
        yield f"http://{bound_host}:{bound_port}"
    finally:
        server.stop()


def _configure(options: ServeOptions, endpoint: str) -> None:
    """Point the app's settings at the embedded DynamoDB, create the table, reset wiring."""
    env = {
        "PSS_STAGE": "dev",
        "PSS_DECISIONS_TABLE": options.table,
        "PSS_DYNAMODB_ENDPOINT": endpoint,
        "PSS_API_KEYS": f"{options.client_id}:{options.api_key}",
        "PSS_PSEUDONYM_KEY": secrets.token_hex(32),
        "AWS_DEFAULT_REGION": "eu-west-2",
        # moto accepts any credentials; never send the developer's real ones to it.
        "AWS_ACCESS_KEY_ID": "local",
        "AWS_SECRET_ACCESS_KEY": "local",
    }
    if options.policy_dir is not None:
        env["PSS_POLICY_DIR"] = str(options.policy_dir.resolve())
    os.environ.update(env)
    os.environ.pop("AWS_SESSION_TOKEN", None)
    os.environ.pop("AWS_PROFILE", None)

    import boto3

    from chalicelib.api import wiring
    from chalicelib.decisions.table import create_table

    create_table(boto3.client("dynamodb", region_name="eu-west-2", endpoint_url=endpoint),
                 options.table)
    wiring.install(None)  # settings are read from the environment just set


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
    from chalice.local import create_local_server

    if str(PROJECT_DIR) not in sys.path:
        sys.path.insert(0, str(PROJECT_DIR))
    app_module = importlib.import_module("app")
    config = Config.create(chalice_stage="dev", app_name="pss-rules",
                           project_dir=str(PROJECT_DIR), chalice_app=app_module.app)
    server = create_local_server(app_module.app, config, host, port)
    bound = server.server.server_address[1]
    thread = threading.Thread(target=server.server.serve_forever, name="chalice-local",
                              daemon=True)
    thread.start()
    try:
        yield f"http://{host}:{bound}"
    finally:
        server.shutdown()
        server.server.server_close()
        thread.join(timeout=10)


def banner(url: str, endpoint: str, options: ServeOptions, sample: dict[str, Any]) -> str:
    """What `pss serve` prints once both servers are up."""
    body = json.dumps(sample)
    return (
        f"PSS rules API:  {url}\n"
        f"DynamoDB:       {endpoint} (table {options.table}, moto, in memory)\n"
        f"API key:        {options.api_key} (client {options.client_id})\n"
        f"OpenAPI:        {url}/openapi.json\n"
        "\nTry it:\n"
        f"curl -s -X POST {url}/v1/decisions \\\n"
        f"  -H 'x-api-key: {options.api_key}' -H 'content-type: application/json' \\\n"
        f"  -d '{body}'\n"
        "\nCtrl-C stops everything.\n"
    )


if __name__ == "__main__":
    raise SystemExit(serve_main(sys.argv[1:]))
