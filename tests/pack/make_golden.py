"""Generate the golden referrals of the national pack and their expected decisions.

`referrals()` builds a fixed list of at least 200 referrals (POST /v1/decisions bodies) from a
seeded random generator and hand-picked templates, so the list never changes unless this file
does. `expected(decision)` reduces a decision to the parts the golden file pins down.

Refresh `tests/pack/golden.json` after an intended change to the pack, then review the diff:

    python -m tests.pack.make_golden            # from the repository root

`tests/pack/test_golden.py` re-decides every referral and compares.
"""

from __future__ import annotations

import datetime as dt
import json
import random
from pathlib import Path
from typing import Any

from chalicelib.dsl.types import REGIONS

ROOT = Path(__file__).resolve().parents[2]
GOLDEN = Path(__file__).with_name("golden.json")
POLICIES = ROOT / "policies"
SEED = 20250601

DATES = (
    "2013-04-01",
    "2014-03-31",
    "2015-06-15",
    "2016-07-13",
    "2017-03-28",
    "2017-03-29",
    "2020-06-01",
    "2024-03-31",
    "2024-04-01",
    "2025-03-31",
    "2025-04-01",
    "2025-06-01",
)

# Activity templates: (procedures, diagnoses, drugs, treatment function, sex or None).
ACTIVITY: tuple[tuple[list[str], list[str], list[str], str | None, str | None], ...] = (
    (["K26.2", "Y53.1"], ["I35.0"], [], None, None),
    (["K26.2", "Y79.8"], ["I35.0"], [], None, None),
    (["K26.3"], ["I35.0"], [], None, None),
    (["K25.2"], ["I34.0"], [], None, None),
    (["K02.1"], ["I42.0"], [], None, None),
    (["E53.1"], ["J84.1"], [], None, None),
    (["K75.1"], ["I21.0"], [], None, None),
    (["K59.1"], ["I47.2"], [], None, None),
    (["L43.8"], ["I10"], [], None, None),
    ([], ["Q21.1"], [], None, None),
    (["W37.1"], ["M16.1"], [], None, None),
    ([], ["J18.9"], [], None, None),
    ([], ["C18.7"], ["cetuximab", "fluorouracil"], None, None),
    ([], ["C34.1"], ["pembrolizumab"], None, None),
    ([], ["C50.9"], ["docetaxel"], None, None),
    (["X72.1"], ["C64"], [], None, None),
    (["X65.3"], ["C79.5", "C61"], [], None, None),
    (["X65.3"], ["C50.9"], [], None, None),
    ([], ["C58"], ["methotrexate"], None, None),
    (["J01.1"], ["K74.6"], [], None, None),
    (["M01.2"], ["N18.5"], [], None, None),
    ([], ["E84.0"], [], None, None),
    ([], ["D66"], [], None, "male"),
    ([], ["B20.1"], [], None, None),
    ([], ["G11.3"], [], None, None),
    ([], ["F50.0"], [], "720", None),
    ([], ["F53.1"], [], "724", "female"),
    ([], ["F20.0"], [], "712", "male"),
    ([], ["F32.2"], [], "711", None),
    ([], ["F64.0"], [], None, None),
    ([], [], ["abaloparatide"], None, "male"),
    ([], [], ["abaloparatide"], None, "female"),
)

CET5_FACTS: dict[str, Any] = {
    "ras_status": "wild_type",
    "metastatic_or_locally_advanced_inoperable": True,
    "prior_chemotherapy_for_metastatic_disease": False,
    "line_of_therapy": 1,
    "prior_anti_egfr_therapy": False,
}
CET2014_FACTS: dict[str, Any] = {
    "prescriber_grade": "consultant",
    "metastatic_disease": True,
    "line_of_therapy": 1,
    "kras_status": "wild_type",
}
SABR_FACTS: dict[str, Any] = {
    "haematological_malignancy": False,
    "metastases_count": 2,
    "disease_free_interval_months": 14,
    "synchronous_colorectal_liver_metastases": False,
    "who_performance_status": 1,
    "life_expectancy_months": 12,
    "largest_metastasis_cm": 3.5,
    "lung_or_liver_metastasis": False,
}


def _facts_for(rng: random.Random, drugs: list[str], date: str) -> tuple[dict[str, Any], list[str]]:
    """Facts for a drug referral: a random subset, some values flipped, sometimes a break."""
    facts: dict[str, Any] = {}
    attestations: list[str] = []
    if "cetuximab" in drugs:
        base = CET2014_FACTS if date < "2017-03-29" else CET5_FACTS
        for name, value in base.items():
            roll = rng.random()
            if roll < 0.15:
                continue  # left out: unknown
            if roll < 0.3:
                value = _flip(name, value)
            facts[name] = value
        if rng.random() < 0.8:
            attestations.append("prescriber_consultant_or_accredited_trainee")
    if drugs and drugs != ["abaloparatide"] and rng.random() < 0.35:
        gap = rng.choice((28, 42, 43, 84, 85, 120))
        facts["last_dose_date"] = (dt.date.fromisoformat(date) - dt.timedelta(days=gap)).isoformat()
        if rng.random() < 0.8:
            facts["expected_cycle_length_days"] = rng.choice((7, 14, 21))
    return facts, attestations


def _flip(name: str, value: Any) -> Any:
    if isinstance(value, bool):
        return not value
    if isinstance(value, int):
        return value + 1
    return {"wild_type": "mutant", "consultant": "accredited_trainee"}.get(value, value)


def _sabr_facts(rng: random.Random) -> dict[str, Any]:
    variants: dict[str, tuple[Any, ...]] = {
        "metastases_count": (0, 1, 3, 4),
        "disease_free_interval_months": (3, 6, 7),
        "who_performance_status": (2, 3),
        "life_expectancy_months": (5, 6),
        "largest_metastasis_cm": (5, 5.5, 6, 6.1),
        "lung_or_liver_metastasis": (True,),
        "haematological_malignancy": (True,),
        "synchronous_colorectal_liver_metastases": (True,),
    }
    facts = dict(SABR_FACTS)
    for name in rng.sample(sorted(variants), k=rng.choice((0, 1, 2))):
        facts[name] = rng.choice(variants[name])
    if rng.random() < 0.1:
        facts.pop(rng.choice(sorted(facts)))
    return facts


def referrals() -> list[dict[str, Any]]:
    """The fixed golden referrals (deterministic: seeded generator, fixed templates)."""
    rng = random.Random(SEED)
    out: list[dict[str, Any]] = []
    for index in range(240):
        procedures, diagnoses, drugs, function, sex = ACTIVITY[index % len(ACTIVITY)]
        date = rng.choice(DATES)
        age = rng.choice((1, 9, 15, 16, 17, 18, 34, 52, 67, 81))
        request: dict[str, Any] = {
            "referral_id": f"golden-{index:03d}",
            "date": date,
            "patient": {
                "age": age,
                "sex": sex or rng.choice(("female", "male")),
                "region": rng.choice(REGIONS),
            },
            "procedures": list(procedures),
            "diagnoses": list(diagnoses),
            "drugs": list(drugs),
        }
        if rng.random() < 0.1:
            del request["patient"]["region"]
        if function:
            request["treatment_function"] = function
        if procedures[:1] == ["X65.3"] or function == "712":
            request["provider"] = {"ods_code": rng.choice(("RBV", "RR8", "RBA", "RKL"))}
        facts, attestations = _facts_for(rng, list(drugs), date)
        if procedures[:1] == ["X65.3"] and "C79.5" in diagnoses:
            facts.update(_sabr_facts(rng))
        if facts:
            request["facts"] = facts
        if attestations:
            request["attestations"] = attestations
        out.append(request)
    out.extend(_policy_referrals(rng, start=len(out)))
    return out


# Referrals aimed at the policies: (procedures, diagnoses, drugs, continuation?).
POLICY_ACTIVITY: tuple[tuple[list[str], list[str], list[str], bool], ...] = (
    ([], ["C18.7"], ["cetuximab", "fluorouracil"], False),
    ([], ["C20"], ["cetuximab", "irinotecan"], False),
    ([], ["C18.7"], ["cetuximab"], True),
    ([], ["C34.1"], ["pembrolizumab"], True),
    ([], ["C43.9"], ["nivolumab", "ipilimumab"], True),
    ([], ["C50.9"], ["docetaxel"], True),
    (["X65.3"], ["C78.0", "C18.7"], [], False),
    (["X65.3"], ["C79.5", "C61"], [], False),
)
POLICY_DATES = ("2015-06-01", "2016-12-01", "2017-03-28", "2018-06-01", "2024-06-01", "2025-06-01")


def _policy_referrals(rng: random.Random, start: int) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    for offset in range(120):
        procedures, diagnoses, drugs, continuation = POLICY_ACTIVITY[offset % len(POLICY_ACTIVITY)]
        date = rng.choice(POLICY_DATES)
        request: dict[str, Any] = {
            "referral_id": f"golden-{start + offset:03d}",
            "date": date,
            "patient": {"age": rng.choice((17, 18, 45, 70)), "region": rng.choice(REGIONS)},
            "procedures": list(procedures),
            "diagnoses": list(diagnoses),
            "drugs": list(drugs),
        }
        facts, attestations = _facts_for(rng, list(drugs), date)
        if continuation and "last_dose_date" not in facts:
            gap = rng.choice((42, 43, 84, 85))
            last = dt.date.fromisoformat(date) - dt.timedelta(days=gap)
            facts["last_dose_date"] = last.isoformat()
            facts["expected_cycle_length_days"] = rng.choice((14, 21))
        if procedures:
            request["provider"] = {"ods_code": rng.choice(("RBV", "RA7", "RBA"))}
            facts.update(_sabr_facts(rng))
        if facts:
            request["facts"] = facts
        if attestations:
            request["attestations"] = attestations
        out.append(request)
    return out


def expected(decision: Any) -> dict[str, Any]:
    """The parts of a decision the golden file pins down."""
    body = decision.to_dict()
    service, policy = body["service"], body["policy"]
    return {
        "commissioner": body["commissioner"],
        "service": service["id"] if service else None,
        "line": service["line"] if service else None,
        "highly_specialised": service["highly_specialised"] if service else None,
        "policy": policy["id"] if policy else None,
        "policy_version": policy["version"] if policy else None,
        "eligibility": body["eligibility"],
        "route": body["route"],
        "missing": body["missing"],
        # Whether the answer rests on pack content marked unverified (see `provenance`).
        "unverified": body["unverified"],
    }


def build() -> list[dict[str, Any]]:
    """Decide every golden referral with the pack in `policies/`."""
    from chalicelib import load_policy_set

    policy_set = load_policy_set(POLICIES)
    return [
        {"request": request, "expected": expected(policy_set.decide(request))}
        for request in referrals()
    ]


def main() -> None:
    """Write `golden.json` (sorted keys, one stable layout) and say how many cases."""
    cases = build()
    GOLDEN.write_text(json.dumps(cases, indent=1, sort_keys=True) + "\n", encoding="utf-8")
    print(f"wrote {len(cases)} golden referrals to {GOLDEN.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
