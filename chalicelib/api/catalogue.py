"""Read-only use cases over the policy set: policies, the policy set, health, assessments.

In: a compiled `PolicySet` and request data. Out: `Reply`s with response models, or `ApiError`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote

from chalicelib.api.replies import Reply, not_found
from chalicelib.api.schemas import (
    AssessmentOut,
    AttestationOut,
    FactOut,
    HealthOut,
    OutcomeOut,
    PolicyListOut,
    PolicyOut,
    PolicySetOut,
    PolicySetRef,
    PolicyVersionsOut,
    ServiceEntryOut,
)
from chalicelib.dsl import ast
from chalicelib.engine.policy_set import PolicySet

FOUR_FACTORS = "four_factors"


@dataclass(frozen=True)
class Catalogue:
    """What the policy set holds, and the assessments it runs."""

    policy_set: PolicySet
    stage: str

    def health(self) -> Reply:
        """200 once the policy set has compiled (wiring answers 503 before that)."""
        ref = PolicySetRef(version=self.policy_set.version, digest=self.policy_set.digest)
        return Reply(200, HealthOut(status="ok", stage=self.stage, policy_set=ref))

    def policy_set_info(self) -> Reply:
        """Name, version, digest and first covered date of the policy set."""
        ps = self.policy_set
        facts = [FactOut(name=f.name, type=f.type.kind, values=list(f.type.values), unit=f.unit,
                         description=f.description) for f in ps.checked.facts.values()]
        attestations = [AttestationOut(name=a.name, description=a.description)
                        for a in ps.checked.attestations.values()]
        services = [_service_out(s) for s in ps.checked.services.values()]
        return Reply(200, PolicySetOut(name=ps.name, version=ps.version, digest=ps.digest,
                                       covers_from=ps.covers_from, facts=facts,
                                       attestations=attestations, services=services))

    def policies(self) -> Reply:
        """Every policy version, by id then start date."""
        found = [_policy_out(p) for p in self.policy_set.policy_versions()]
        return Reply(200, PolicyListOut(policies=found))

    def policy(self, policy_id: str) -> Reply:
        """Every version of one policy; the id may arrive URL-encoded (`NHSCB%2FA09%2FP%2Fa`)."""
        wanted = unquote(policy_id)
        found = [_policy_out(p) for p in self.policy_set.policy_versions(wanted)]
        if not found:
            raise not_found(f"no policy `{wanted[:128]}`")
        return Reply(200, PolicyVersionsOut(id=wanted, versions=found))

    def assess(self, raw: Any) -> Reply:
        """Run the four-factor assessment over its inputs; `RequestError` (400) on unknown or
        ill-typed ones, `UnknownNameError` (404) when the pack has no such assessment."""
        assessment = self.policy_set.assess(FOUR_FACTORS, raw)
        return Reply(200, AssessmentOut.model_validate(assessment.to_dict()))


def _service_out(decl: ast.ServiceDecl) -> ServiceEntryOut:
    return ServiceEntryOut(
        id=decl.id, name=decl.name, lines=list(decl.lines), programme=decl.programme,
        portfolio=decl.portfolio, highly_specialised=decl.highly_specialised,
        source=list(decl.provenance.sources), verified=decl.provenance.verified,
    )


def _policy_out(decl: ast.PolicyDecl) -> PolicyOut:
    met = decl.met or ast.Outcome("eligible")
    not_met = decl.not_met or ast.Outcome("not_eligible")
    return PolicyOut(
        id=decl.id,
        version=decl.version,
        title=decl.title,
        effective_from=decl.effective_from,
        effective_to=decl.effective_to,
        governs=list(decl.governs) if decl.governs is not None else None,
        when_met=OutcomeOut.model_validate({"eligibility": met.eligibility, "route": met.route}),
        when_not_met=OutcomeOut.model_validate({"eligibility": not_met.eligibility,
                                                "route": not_met.route}),
    )
