"""Development-only tools of the `pss` command, kept out of the deployed Lambda package.

Chalice deploys `app.py` and `chalicelib/` only, so what serves no request lives here:

* `local_stack` -- `pss serve`: the API on loopback, decisions kept in a SQLite data folder;
* `synth`       -- `pss synth`: deterministic synthetic SUS-like activity;
* `gitbase`     -- `pss diff --base REF`: the base pack taken from git with `git archive`
  (a subprocess no deployed function runs).

The reference interpreter the compiled evaluators are checked against is a test oracle
(`tests/support/oracle.py`). Nothing in `chalicelib` imports this package except lazily, inside
the CLI commands that need it.
"""
