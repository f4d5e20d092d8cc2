"""Hostile pack file names: what `POST /v1/what-if` and the studio must both refuse, with the
same field and message (`chalicelib.limits.pack_files`, the one rule)."""

from __future__ import annotations

HOSTILE_PACK_FILE_NAMES = {
    "a NUL in a name": "policies/card\0iac.pss",
    "a 300-character name": "policies/" + "a" * 300 + ".pss",
    "a name one over 64 characters": "policies/" + "a" * 65 + ".pss",
    "a file below a file": "policies/cardiac.pss/x.pss",
    "another folder": "policies/other/x.pss",
    "a folder below tests": "policies/tests/deep/x.pss",
    "a csv among the tests": "policies/tests/x.csv",
    "policy text among the codes": "policies/codes/x.pss",
    "a parent folder": "policies/../app.py",
    "a parent folder inside": "policies/tests/../cardiac.pss",
    "a dot folder": "policies/./cardiac.pss",
    "an absolute path": "/etc/passwd.pss",
    "a backslash": "policies\\cardiac.pss",
    "upper case": "policies/Cardiac.pss",
    "a non-ASCII letter": "policies/cardiaç.pss",
    "a leading dash": "policies/-cardiac.pss",
    "no folder": "cardiac.pss",
    "another root folder": "pack/cardiac.pss",
    "a csv outside codes": "policies/x.csv",
    "no name": "policies/.pss",
    "no suffix": "policies/cardiac",
    "a folder only": "policies/",
    "empty": "",
    "a trailing newline": "policies/cardiac.pss\n",
}
