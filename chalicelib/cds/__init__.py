"""CDS Hooks for EPRs: discovery, and order-select / order-sign from FHIR R4 orders to cards.

Framework-free: `service.handle` takes the parsed body and injected `decide` / `fetch`
callables and returns (status, JSON body), so a Chalice route is a thin wrapper.
"""

from __future__ import annotations

from chalicelib.cds.service import SERVICES, discovery, handle

__all__ = ["SERVICES", "discovery", "handle"]
