"""Building the decision request (design section 4) for one order."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from typing import Any

from chalicelib.cds.access import unique
from chalicelib.cds.orders import Order
from chalicelib.cds.patient import PatientData

TOP_LEVEL_FACTS = ("treatment_function", "region", "icb")


def referral_request(
    order: Order,
    patient: PatientData,
    patient_diagnoses: Sequence[str],
    day: dt.date,
) -> dict[str, Any]:
    """Build the JSON `PolicySet.decide` takes (design section 4) for one order.

    The order's own diagnoses come first (the first is primary); the patient's recorded
    conditions follow as secondary diagnoses. `day` is the order's date or the hook call's.
    """
    if patient.birth_date is None:
        raise ValueError("a referral request needs the patient's birth date")
    facts = dict(order.facts)
    patient_json: dict[str, Any] = {"birth_date": patient.birth_date.isoformat()}
    for name in ("region", "icb"):
        if name in facts:
            patient_json[name] = facts.pop(name)
    if patient.sex:
        patient_json["sex"] = patient.sex
    if patient.nhs_number:
        patient_json["nhs_number"] = patient.nhs_number
    request: dict[str, Any] = {
        "date": day.isoformat(),
        "patient": patient_json,
        "procedures": order.procedures,
        "diagnoses": unique([*order.diagnoses, *patient_diagnoses]),
        "drugs": order.drugs,
        "facts": facts,
        "attestations": unique(order.attestations),
    }
    if "treatment_function" in facts:
        request["treatment_function"] = facts.pop("treatment_function")
    if order.provider:
        request["provider"] = {"ods_code": order.provider}
    if order.reference and len(order.reference) <= 128:
        request["referral_id"] = order.reference
    return request

