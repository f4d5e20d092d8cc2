"""Resolving FHIR References: contained (`#id`), then the Bundle, then the prefetch."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from chalicelib.cds.access import objects, string


@dataclass
class Resolver:
    """Finds referenced resources: contained (`#id`), then the Bundle, then the prefetch."""

    by_reference: dict[str, dict[str, Any]] = field(default_factory=dict)

    def add(self, resource: Mapping[str, Any], full_url: str | None = None) -> None:
        """Index a resource under `Type/id` and its Bundle `fullUrl`."""
        kind, rid = resource.get("resourceType"), resource.get("id")
        if isinstance(kind, str) and isinstance(rid, str):
            self.by_reference.setdefault(f"{kind}/{rid}", dict(resource))
        if full_url:
            self.by_reference.setdefault(full_url, dict(resource))

    def resolve(
        self, reference: Mapping[str, Any], container: Mapping[str, Any], path: str
    ) -> dict[str, Any] | None:
        """Return the resource a Reference points at, or None when it is not to hand."""
        ref = string(reference, "reference", path)
        if not ref:
            return None
        if ref.startswith("#"):
            for item, _ in objects(container, "contained", "contained"):
                if item.get("id") == ref[1:]:
                    return item
            return None
        found = self.by_reference.get(ref)
        if found is None and "/" in ref:
            # An absolute URL on the EHR's server still ends in Type/id.
            found = self.by_reference.get("/".join(ref.rstrip("/").split("/")[-2:]))
        return found
