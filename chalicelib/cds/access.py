"""Typed reads of FHIR R4 JSON (plain dicts): each read gets the JSON type FHIR defines or
raises `FhirError` naming the JSON path, e.g. `context.draftOrders.entry[0].resource.code`.

Why plain dicts and not `fhir.resources`: we read perhaps thirty elements; a full R4 model costs
cold-start time on Lambda (hundreds of classes), rejects the extensions and partial resources
order-select sends, and would still need our own reading of code systems. (The tests validate
what we emit with `fhir.resources`.)
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterable, Iterator, Mapping
from typing import Any

from chalicelib.errors import Problem, RequestError

_FHIR_DATE = re.compile(r"^(\d{4})(-(\d{2})(-(\d{2}))?)?(T.*)?$")


class FhirError(RequestError):
    """FHIR that is not well formed; `details` names the bad element by JSON path."""

    def __init__(self, field_path: str, problem: str) -> None:
        super().__init__([Problem(field_path, problem)], f"{field_path}: {problem}")


def obj(value: Any, path: str) -> dict[str, Any]:
    """Return `value` if it is a JSON object, else raise FhirError at `path`."""
    if not isinstance(value, dict):
        raise FhirError(path, "must be a JSON object")
    return value


def opt_obj(parent: Mapping[str, Any], key: str, path: str) -> dict[str, Any] | None:
    value = parent.get(key)
    return None if value is None else obj(value, f"{path}.{key}")


def array(parent: Mapping[str, Any], key: str, path: str) -> list[Any]:
    value = parent.get(key)
    if value is None:
        return []
    if not isinstance(value, list):
        raise FhirError(f"{path}.{key}", "must be a JSON array")
    return value


def string(parent: Mapping[str, Any], key: str, path: str) -> str | None:
    value = parent.get(key)
    if value is None:
        return None
    if not isinstance(value, str):
        raise FhirError(f"{path}.{key}", "must be a string")
    return value


def objects(parent: Mapping[str, Any], key: str, path: str) -> Iterator[tuple[dict[str, Any], str]]:
    for i, item in enumerate(array(parent, key, path)):
        yield obj(item, f"{path}.{key}[{i}]"), f"{path}.{key}[{i}]"


def fhir_date(value: Any, path: str) -> dt.date | None:
    """Read a FHIR date/dateTime as its calendar date; None when only year or month is given."""
    if value is None:
        return None
    match = _FHIR_DATE.match(value) if isinstance(value, str) else None
    if match is None:
        raise FhirError(path, "must be a FHIR date or dateTime (YYYY, YYYY-MM or YYYY-MM-DD…)")
    if match.group(5) is None:
        return None  # a partial date: well formed, but not precise enough to compute an age
    try:
        return dt.date(int(match.group(1)), int(match.group(3)), int(match.group(5)))
    except ValueError:
        raise FhirError(path, f"`{value}` is not a real date") from None


def resource_type(resource: Mapping[str, Any], path: str) -> str:
    """Return `resourceType`, raising FhirError when it is missing or not a string."""
    kind = resource.get("resourceType")
    if not isinstance(kind, str) or not kind:
        raise FhirError(f"{path}.resourceType", "is required (a FHIR resource type)")
    return kind



def unique(items: Iterable[str]) -> list[str]:
    """`items` without repeats, first occurrence kept (the first code is the primary one)."""
    return list(dict.fromkeys(items))

