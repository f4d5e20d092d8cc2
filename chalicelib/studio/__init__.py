"""The commissioner studio: the page `pss serve` serves at `GET /studio`, and its endpoints.

A commissioner edits the pack in the browser with live diagnostics, runs its tests, decides a
referral with its reasons and runs a what-if of the edited pack against the served one.
Everything is served from this machine (CSP `default-src 'self'`). Only `pss serve` imports
this package: `app.py` never does, and `make package` strips it from the Lambda zip.

Modules: `tokens` (the grammar's terminals as a highlighting table, a build step),
`schemas` (the endpoints' request models and limits), `workspace` (the served pack and an
edited copy of it), `service` (the use cases), `http` (routes, static files, headers and the
hook into `pss serve`). The built page lives in `static/` (made by `make studio`).
"""
