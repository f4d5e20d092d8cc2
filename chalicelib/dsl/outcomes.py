"""The two answers a decision gives, each one vocabulary: who commissions, and eligibility.

Policies name them (`commissioner icb_delegated from ...`, `when met: prior_approval`), the
checker accepts only these values, the engine answers with them and the API's schemas list
them. `StrEnum`s, so each member is also its JSON string.
"""

from __future__ import annotations

from enum import StrEnum


class Commissioner(StrEnum):
    """Who commissions the activity."""

    NHS_ENGLAND = "nhs_england"
    ICB_DELEGATED = "icb_delegated"  # an ICB, under delegation from NHS England
    ICB_CORE = "icb_core"  # an ICB, as core (not specialised) commissioning


class Eligibility(StrEnum):
    """Whether this patient may have the activity under the policy that governs it."""

    ELIGIBLE = "eligible"
    NOT_ELIGIBLE = "not_eligible"
    PRIOR_APPROVAL = "prior_approval"  # sought via `route` (a Blueteq form, say)
    IFR_REQUIRED = "ifr_required"  # an individual funding request, via `route`
    INCOMPLETE = "incomplete"  # `missing` lists what the answer waits for
    NOT_APPLICABLE = "not_applicable"  # no policy governs this activity


# What a policy may answer when its criteria are met or not met, and which need a route.
MET_OUTCOMES = (Eligibility.ELIGIBLE, Eligibility.PRIOR_APPROVAL, Eligibility.IFR_REQUIRED,
                Eligibility.NOT_ELIGIBLE)
NOT_MET_OUTCOMES = (Eligibility.NOT_ELIGIBLE, Eligibility.IFR_REQUIRED,
                    Eligibility.PRIOR_APPROVAL)
ROUTED = (Eligibility.PRIOR_APPROVAL, Eligibility.IFR_REQUIRED)
