"""CDS Hooks for EPRs: discovery, order-select / order-sign from FHIR R4 orders to cards.

Framework-free: `service.handle` takes the parsed body and injected `decide` / `fetch`
callables and returns the typed answer, so a Chalice route is a thin wrapper.

| module        | holds                                                              |
|---------------|--------------------------------------------------------------------|
| `models`      | the CDS Hooks 2.0 request, response and feedback bodies (pydantic)  |
| `access`      | typed reads of FHIR JSON; `FhirError` naming the JSON path         |
| `codes`       | code and identifier systems; codes out of CodeableConcepts          |
| `references`  | resolving References (contained, Bundle, prefetch)                 |
| `patient`     | birth date, sex, NHS number; ICD-10 codes of Conditions            |
| `orders`      | draftOrders split into orders; what each order says                |
| `request`     | the decision request built for one order                           |
| `recorded`    | what cards read of a recorded decision (protocols); `Decide`, `Fetch` |
| `cards`       | the cards: summaries, detail, links, override reasons              |
| `extensions`  | CRD coverage-information and our commissioning extension          |
| `service`     | discovery and `handle`: a call in, an `Answer` out                 |
| `http_fetch`  | fetching missing prefetch from the EHR's FHIR server               |
"""

from __future__ import annotations

from chalicelib.cds.service import SERVICES, discovery, handle

__all__ = ["SERVICES", "discovery", "handle"]
