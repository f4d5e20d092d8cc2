"""Decision use cases, free of any web framework: decide, re-decide, read back.

In: request JSON as Python data, the caller's client id, and collaborators passed in (policy
set, store factory, clock, id factory, pseudonymiser, audit log). Out: a `Reply` holding a
response model, or an `ApiError` carrying the design's error body. Nothing here reads the
environment.

INVARIANT: a reply says `recorded: true` only after the store confirmed the write; every store
failure becomes a 503 with `Retry-After`.

INVARIANT (who may read): a decision belongs to the client that recorded it. Any other client
gets the same 404 as for an id that does not exist, on every read and on re-decide; an audit
client may read (never write) any decision, and each such read goes to `audit_log`.

INVARIANT (what we keep): stored inputs hold no NHS number (only its keyed hash) and no birth
date: the age the decision used is kept, in years and in months.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from functools import partial
from typing import Any, TypeVar

from pydantic import ValidationError

from chalicelib.activity import Activity
from chalicelib.api.ids import is_ulid
from chalicelib.api.privacy import Pseudonymiser
from chalicelib.api.replies import ApiError, Reply, bad_request, not_found, unavailable
from chalicelib.api.schemas import DecisionOut, DecisionVersionsOut, RedecideRequest
from chalicelib.decisions.store import (
    DecisionStore,
    DecisionVersion,
    IdempotencyClaim,
    IdempotencyKeyTaken,
    StoreUnavailable,
    VersionConflict,
)
from chalicelib.engine.decision import Decision
from chalicelib.engine.policy_set import PolicySet
from chalicelib.engine.request import DecisionRequest, attestation_problems, parse_request
from chalicelib.errors import Problem, validation_problems

IDEMPOTENCY_TTL = dt.timedelta(hours=48)
IDEMPOTENCY_KEY = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")
# Each lost race means another writer succeeded, so this bounds the writers we outlast.
MAX_APPEND_ATTEMPTS = 16

T = TypeVar("T")


def _stamp(moment: dt.datetime) -> str:
    return moment.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


@dataclass(frozen=True)
class DecisionService:
    """Decide requests, record them as versions, and read them back."""

    policy_set: PolicySet
    store: Callable[[], DecisionStore]
    clock: Callable[[], dt.datetime]
    new_id: Callable[[], str]
    pseudonymiser: Pseudonymiser
    # (auditor client id, decision id, what was read): one line per audit read.
    audit_log: Callable[[str, str, str], None] = lambda auditor, decision_id, read: None

    # --- POST /v1/decisions ---------------------------------------------------------------

    def decide(self, raw: Any, client_id: str, idempotency_key: str | None,
               dry_run: bool, hook_instance: str | None = None) -> Reply:
        """Decide a request; record it as version 1 unless `dry_run`.

        Returns 201 with the new decision, 200 for a dry run or an idempotent replay.
        Raises `ApiError` 400 (invalid), 409 (key reused with another body), 422 (not
        covered), 503 (store failed).
        """
        request, activity = self._parse(raw)
        decision = self._evaluate(activity)
        if dry_run:
            body = DecisionOut.model_validate(
                {"decision_id": None, "version": None, "recorded": False, **decision.to_dict()})
            return Reply(200, body)
        _check_key(idempotency_key)
        digest = self.pseudonymiser.digest(raw)
        now = self.clock()
        store = self.store()
        if idempotency_key is not None:
            held = self._guard(lambda: store.claim(client_id, idempotency_key, _epoch(now)))
            if held is not None:
                return self._replay(store, held, digest)
        first = self._version(self.new_id(), 1, client_id, now, digest, request, decision,
                              request.referral_id, self._nhs_hash(request), activity.age_months)
        if hook_instance is not None:
            first = replace(first, hook_instance=hook_instance)
        claim = None if idempotency_key is None else IdempotencyClaim(
            client_id, idempotency_key, digest, first.decision_id,
            _epoch(now + IDEMPOTENCY_TTL))
        try:
            self._guard(lambda: store.create(first, claim, _epoch(now)))
        except IdempotencyKeyTaken:
            # A concurrent request with the same key won the race: answer as a replay of it.
            held = self._guard(lambda: store.claim(client_id, str(idempotency_key),
                                                   _epoch(now)))
            if held is None:
                raise unavailable("the idempotency key is being processed; retry", 1) from None
            return self._replay(store, held, digest)
        return self._recorded(201, first)

    def _replay(self, store: DecisionStore, held: IdempotencyClaim, digest: str) -> Reply:
        if held.request_digest != digest:
            raise ApiError(409, "idempotency_key_reused", "this Idempotency-Key was already "
                           "used with a different request body", decision_id=held.decision_id)
        original = self._guard(lambda: store.get(held.decision_id, held.version))
        if original is None:
            raise unavailable("the original decision is not readable yet; retry", 1)
        return self._recorded(200, original, {"Idempotent-Replayed": "true"})

    # --- POST /v1/decisions/{id}/versions -------------------------------------------------

    def redecide(self, decision_id: str, raw: Any, client_id: str,
                 idempotency_key: str | None = None) -> Reply:
        """Re-decide the latest inputs plus added facts/attestations as a new version (201).

        Only the owner may; anyone else gets 404. Concurrent re-decisions each get their own
        version: a lost race re-reads the latest version and decides again on top of it. With
        an `Idempotency-Key` the version and the key are written together, so a retry after a
        lost answer replays that version (200) instead of recording another.
        """
        added = self._redecide_body(raw)
        self._known_id(decision_id)
        _check_key(idempotency_key)
        store = self.store()
        now = self.clock()
        scoped = None if idempotency_key is None else f"redecide#{decision_id}#{idempotency_key}"
        digest = self.pseudonymiser.digest({"redecide": decision_id, "body": raw})
        if scoped is not None:
            held = self._guard(lambda: store.claim(client_id, scoped, _epoch(now)))
            if held is not None:
                return self._replay(store, held, digest)
        for _ in range(MAX_APPEND_ATTEMPTS):
            latest = self._guard(lambda: store.latest(decision_id))
            if latest is None or latest.client_id != client_id:
                raise not_found(f"no decision `{decision_id}`")
            inputs = _merge(latest.inputs, added)
            # The stored inputs hold no birth date, so the months first decided on are kept.
            request, activity = self._parse(inputs, _kept_age_months(latest.inputs))
            decision = self._evaluate(activity)
            following = self._version(decision_id, latest.version + 1, client_id, self.clock(),
                                      self.pseudonymiser.digest(inputs), request, decision,
                                      latest.referral_id, latest.nhs_number_hash,
                                      activity.age_months)
            claim = None if scoped is None else IdempotencyClaim(
                client_id, scoped, digest, decision_id, _epoch(now + IDEMPOTENCY_TTL),
                following.version)
            try:
                self._guard(partial(store.append, following, claim, _epoch(now)))
            except VersionConflict:
                continue
            except IdempotencyKeyTaken:
                # The same key won elsewhere meanwhile: answer with what it recorded.
                held = self._guard(lambda: store.claim(client_id, str(scoped), _epoch(now)))
                if held is None:
                    raise unavailable("the idempotency key is being processed; retry",
                                      1) from None
                return self._replay(store, held, digest)
            return self._recorded(201, following)
        raise ApiError(409, "version_conflict", "the decision changed too often while being "
                       "re-decided; retry", decision_id=decision_id)

    def _redecide_body(self, raw: Any) -> RedecideRequest:
        """The added facts and attestations, checked as `POST /v1/decisions` checks them
        (so a mistake is reported at the same field: `attestations[0]`, `facts.x`)."""
        if not isinstance(raw, dict):
            raise bad_request([Problem("body", "must be a JSON object")])
        try:
            added = RedecideRequest.model_validate(raw)
        except ValidationError as exc:
            raise bad_request(validation_problems(exc)) from None
        problems = attestation_problems(added.attestations, self.policy_set.checked.attestations)
        if problems:
            raise bad_request(problems)
        return added

    # --- GET ------------------------------------------------------------------------------

    def latest(self, decision_id: str, client_id: str, audit: bool = False) -> Reply:
        """The latest version of a decision (200) or 404."""
        self._known_id(decision_id)
        found = self._guard(lambda: self.store().latest(decision_id))
        self._may_read(found, decision_id, client_id, audit, "latest")
        assert found is not None
        return self._recorded(200, found)

    def version(self, decision_id: str, number: str, client_id: str,
                audit: bool = False) -> Reply:
        """One version (200), 400 when `number` is not a positive integer, or 404."""
        if not (number.isdigit() and number.isascii() and 0 < int(number) < 10**6):
            raise bad_request([Problem("version", "must be a whole number from 1")])
        self._known_id(decision_id)
        owner = self._guard(lambda: self.store().get(decision_id, 1))
        self._may_read(owner, decision_id, client_id, audit, f"version {int(number)}")
        found = self._guard(lambda: self.store().get(decision_id, int(number)))
        if found is None:
            raise not_found(f"decision `{decision_id}` has no version {int(number)}")
        return self._recorded(200, found)

    def versions(self, decision_id: str, client_id: str, audit: bool = False) -> Reply:
        """Every version, oldest first (200), or 404."""
        self._known_id(decision_id)
        found = self._guard(lambda: self.store().versions(decision_id))
        self._may_read(found[0] if found else None, decision_id, client_id, audit, "versions")
        body = DecisionVersionsOut(decision_id=decision_id,
                                   versions=[DecisionOut.model_validate(v.body()) for v in found])
        return Reply(200, body, decision_id=decision_id)

    def _may_read(self, first: DecisionVersion | None, decision_id: str, client_id: str,
                  audit: bool, read: str) -> None:
        """404 unless the caller owns the decision or audits; the same 404 as a missing id,
        so existence is not revealed. Audit reads of others' decisions are logged."""
        if first is not None and first.client_id == client_id:
            return
        if first is not None and audit:
            self.audit_log(client_id, decision_id, read)
            return
        raise not_found(f"no decision `{decision_id}`")

    # --- helpers --------------------------------------------------------------------------

    def _parse(self, raw: Any, age_months: int | None = None
               ) -> tuple[DecisionRequest, Activity]:
        """The request and its activity; `RequestError` (400) names every bad field.
        `age_months`: the exact age a re-decision keeps (see `parse_request`)."""
        checked = self.policy_set.checked
        return parse_request(raw, checked.fact_types, checked.attestations,
                             age_months=age_months)

    def _evaluate(self, activity: Activity) -> Decision:
        """The decision; `NotCoveredError` (422, field `date`) before the pack's first date."""
        return self.policy_set.decide_activity(activity)

    def _nhs_hash(self, request: DecisionRequest) -> str | None:
        number = request.patient.nhs_number
        return self.pseudonymiser.nhs_number(number) if number else None

    def _version(self, decision_id: str, number: int, client_id: str, now: dt.datetime,
                 digest: str, request: DecisionRequest, decision: Decision,
                 referral_id: str | None, nhs_hash: str | None,
                 age_months: int | None) -> DecisionVersion:
        return DecisionVersion(decision_id=decision_id, version=number, client_id=client_id,
                               created_at=_stamp(now), request_digest=digest,
                               inputs=stored_inputs(request, age_months),
                               result=decision.to_dict(),
                               referral_id=referral_id, nhs_number_hash=nhs_hash)

    @staticmethod
    def _recorded(status: int, version: DecisionVersion,
                  headers: Mapping[str, str] | None = None) -> Reply:
        location = {"Location": f"/v1/decisions/{version.decision_id}"}
        return Reply(status, DecisionOut.model_validate(version.body()),
                     {**location, **(headers or {})}, version.decision_id)

    @staticmethod
    def _known_id(decision_id: str) -> None:
        # Not a ULID: it cannot exist, so answer without touching the store.
        if not is_ulid(decision_id):
            raise not_found(f"no decision `{decision_id[:64]}`")

    @staticmethod
    def _guard(call: Callable[[], T]) -> T:
        try:
            return call()
        except StoreUnavailable as exc:
            raise unavailable(str(exc), exc.retry_after) from None


def stored_inputs(request: DecisionRequest, age_months: int | None) -> dict[str, Any]:
    """The request as stored: JSON data without the NHS number (kept only as a keyed hash)
    and without the birth date, replaced by the age used: `age` in whole years at the
    decision date (what re-deciding needs) and `age_months`."""
    data = request.model_dump(mode="json", exclude_none=True)
    patient = data["patient"]
    patient.pop("nhs_number", None)
    patient.pop("birth_date", None)
    if age_months is not None:
        patient["age"] = age_months // 12
        patient[AGE_MONTHS] = age_months
    return data


AGE_MONTHS = "age_months"


def _kept_age_months(inputs: Mapping[str, Any]) -> int | None:
    """The months a recorded version decided on (its inputs no longer hold the birth date,
    so they could not be worked out again); None for versions stored without them."""
    kept = (inputs.get("patient") or {}).get(AGE_MONTHS)
    return kept if isinstance(kept, int) and not isinstance(kept, bool) else None


def _merge(inputs: Mapping[str, Any], added: RedecideRequest) -> dict[str, Any]:
    facts = {**inputs.get("facts", {}), **added.facts}
    attestations = list(dict.fromkeys([*inputs.get("attestations", []), *added.attestations]))
    # `age_months` is ours, not a request field: the request keeps the age in years.
    patient = {k: v for k, v in (inputs.get("patient") or {}).items() if k != AGE_MONTHS}
    return {**inputs, "patient": patient,
            "facts": {k: v for k, v in facts.items() if v is not None},
            "attestations": attestations}


def _check_key(idempotency_key: str | None) -> None:
    if idempotency_key is not None and not IDEMPOTENCY_KEY.match(idempotency_key):
        raise bad_request([Problem("Idempotency-Key", "must be 1 to 128 letters, digits "
                                   "or `.`, `_`, `:`, `-`")])


def _epoch(moment: dt.datetime) -> int:
    return int(moment.timestamp())

