"""Batch classification of one S3 object, for the Chalice `@app.on_s3_event` handler.

In: an S3 client, a bucket and a key `incoming/<name>.csv`, and the compiled pack. Out (in
the same bucket): `classified/<name>.csv`, `classified/<name>.rejects.csv` and
`classified/<name>.summary.json`; the summary is also returned. The object is read as a
stream and the outputs are spooled (memory, then Lambda's /tmp) and uploaded in parts, so the
file never has to fit in memory. Lambda has no /dev/shm for multiprocessing: one process.

It keeps the row evaluator (`classify.classify_stream`), not the columnar core: pyarrow is
an optional extra of over 100 MB unpacked, which would more than double the Lambda package
and its cold start. The summary says which evaluator ran (`evaluator`). Large national
extracts belong to `pss batch` (Parquet, every core) or `--engine spark`.
"""

from __future__ import annotations

import json
import tempfile
from typing import Any

from chalicelib.batch.classify import InputError, classify_stream
from chalicelib.engine.policy_set import PolicySet

INCOMING, CLASSIFIED = "incoming/", "classified/"
_SPOOL = 32 << 20
ROW_EVALUATOR = "row (the Lambda package carries no pyarrow)"


def output_keys(key: str) -> dict[str, str] | None:
    """The three output keys of an `incoming/<name>.csv` key, or None for any other key."""
    if not (key.startswith(INCOMING) and key.endswith(".csv")) or key == INCOMING + ".csv":
        return None
    name = key[len(INCOMING) : -len(".csv")]
    return {
        "classified": f"{CLASSIFIED}{name}.csv",
        "rejects": f"{CLASSIFIED}{name}.rejects.csv",
        "summary": f"{CLASSIFIED}{name}.summary.json",
    }


def classify_s3_object(
    s3_client: Any, bucket: str, key: str, policy_set: PolicySet
) -> dict[str, Any]:
    """Classify `s3://bucket/key` and write its outputs; return the summary written.

    A key outside `incoming/*.csv` is skipped (the summary says so, nothing is written). A
    file that cannot be classified at all (not UTF-8, wrong columns) gets a summary with
    `error` and no classified file.
    """
    keys = output_keys(key)
    if keys is None:
        return {"input": key, "skipped": "not an incoming/<name>.csv key"}
    body = s3_client.get_object(Bucket=bucket, Key=key)["Body"]
    summary: dict[str, Any] = {
        "input": key,
        "policy_set": {"version": policy_set.version, "digest": policy_set.digest},
        "evaluator": ROW_EVALUATOR,
    }
    with (
        tempfile.SpooledTemporaryFile(max_size=_SPOOL) as out,
        tempfile.SpooledTemporaryFile(max_size=_SPOOL) as rejects,
    ):
        try:
            result = classify_stream(body, out, rejects, policy_set, workers=1)  # type: ignore[arg-type]  # SpooledTemporaryFile is a binary file
        except InputError as exc:
            summary["error"] = str(exc)
        else:
            for name, spool in (("classified", out), ("rejects", rejects)):
                spool.seek(0)
                s3_client.upload_fileobj(spool, bucket, keys[name])
            summary.update(result.to_dict())
            summary["outputs"] = {k: keys[k] for k in ("classified", "rejects")}
    s3_client.put_object(
        Bucket=bucket,
        Key=keys["summary"],
        Body=json.dumps(summary, indent=2).encode("utf-8"),
        ContentType="application/json",
    )
    return summary
