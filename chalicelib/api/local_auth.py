"""Run the authorizer under `chalice local` and `chalice.test.Client` as on AWS.

Chalice's local gateway reads only the `Authorization` header, as a TOKEN authorizer, and
answers failures with its own bodies. Deployed, the authorizer is a REQUEST authorizer (the
merge template under `.chalice/` says so): it sees every header, so it can take `x-api-key`
in the dev stage and notice a doubled header; failures get the design's error body through
the gateway responses. This module makes the local gateway behave like the deployed one. It
is installed only off Lambda (`Wiring.on_lambda`: `api.wiring` reads the environment).
"""

from __future__ import annotations

import json
from typing import Any

from chalicelib.api.http import REQUEST_ID_HEADER
from chalicelib.errors import Problem, error_body

UNAUTHORIZED_BODY = json.dumps(error_body(
    "unauthorized",
    "valid credentials are required: `Authorization: Bearer <JWT>`, or `x-api-key` in the dev "
    "stage",
    [Problem("Authorization", "missing, malformed or not accepted")])).encode()
FORBIDDEN_BODY = json.dumps(error_body(
    "forbidden", "these credentials may not call this route")).encode()


def install_if_local(on_lambda: bool) -> bool:
    """Install the local authorizer unless running on Lambda; True when installed."""
    if on_lambda:
        return False
    try:
        import chalice.local as local
    except ImportError:  # only chalice's runtime is deployed; nothing to patch there
        return False
    local.LocalGatewayAuthorizer = _local_authorizer_class(local)  # type: ignore[misc, assignment]
    return True


def _local_authorizer_class(local: Any) -> type:
    from chalice.app import ChaliceAuthorizer

    base = local.LocalGatewayAuthorizer
    if getattr(base, "pss_api_key_aware", False):
        return base  # type: ignore[no-any-return]

    class HeaderAuthorizer(base):  # type: ignore[misc, valid-type]
        """Reads the authorizer's own header; failures carry the design's error body."""

        pss_api_key_aware = True

        def authorize(self, raw_path: str, lambda_event: dict[str, Any],
                      lambda_context: Any) -> tuple[dict[str, Any], Any]:
            route = self._route_for_event(lambda_event)
            authorizer = route.authorizer if route else None
            if not isinstance(authorizer, ChaliceAuthorizer):
                return super().authorize(  # type: ignore[no-any-return]
                    raw_path, lambda_event, lambda_context)
            # Every answer names its request (`X-Request-Id`), these too: deployed, the
            # gateway responses of the merge template map it from API Gateway's request id.
            error_headers = {"x-amzn-RequestId": lambda_context.aws_request_id,
                             REQUEST_ID_HEADER: lambda_context.aws_request_id,
                             "Content-Type": "application/json"}
            headers = {k.lower(): v for k, v in (lambda_event.get("headers") or {}).items()}
            arn = self._arn_builder.build_arn(lambda_event["requestContext"]["httpMethod"],
                                              raw_path)
            # What API Gateway sends a REQUEST authorizer (one value per header here: the
            # local server has already merged duplicates).
            event = {**lambda_event, "type": "REQUEST", "methodArn": arn, "headers": headers,
                     "multiValueHeaders": {k: [v] for k, v in headers.items()}}
            try:
                result = authorizer(event, lambda_context)
            except Exception as exc:
                if str(exc) == "Unauthorized":
                    raise local.NotAuthorizedError(error_headers, UNAUTHORIZED_BODY) from None
                raise
            if not self._check_can_invoke_view_function(arn, result):
                raise local.ForbiddenError(error_headers, FORBIDDEN_BODY)
            return self._update_lambda_event(lambda_event, result), lambda_context

    return HeaderAuthorizer
