"""POST /api/devices/v1/authentication/auth_requests (docs/device-api.md, "Authentication")."""

from __future__ import annotations

import json
import logging

from fastapi import APIRouter, Request, Response

from pyupdate_server.api.deps import State, client_address
from pyupdate_server.auth.device_signatures import load_pubkey, normalize_pubkey, verify_signature
from pyupdate_server.errors import BadRequest, TooLarge, Unauthorized
from pyupdate_server.limits import MAX_AUTH_BODY, MAX_IDENTITY
from pyupdate_server.services.admission import (
    canonical_identity,
    pending_guard,
    submit_auth_request,
)

router = APIRouter(prefix="/api/devices/v1/authentication", tags=["device auth"])
log = logging.getLogger(__name__)

_BODY_DOC = {
    "requestBody": {
        "required": True,
        "content": {
            "application/json": {
                "schema": {
                    "type": "object",
                    "required": ["id_data", "pubkey"],
                    "properties": {
                        "id_data": {
                            "type": "string",
                            "description": "JSON object of scalars or lists of scalars, "
                            f"at most {MAX_IDENTITY} bytes",
                        },
                        "pubkey": {"type": "string"},
                        "tenant_token": {"type": "string"},
                    },
                }
            }
        },
    },
    "parameters": [
        {"name": "X-MEN-Signature", "in": "header", "required": True, "schema": {"type": "string"}}
    ],
}


@router.post(
    "/auth_requests",
    response_class=Response,
    responses={
        200: {"description": "JWT", "content": {"application/jwt": {"schema": {"type": "string"}}}},
        400: {"description": "malformed request"},
        401: {"description": "not accepted (yet), or bad signature"},
        413: {"description": f"body over {MAX_AUTH_BODY} bytes"},
        429: {"description": "too many new devices from this address, or pending in all"},
    },
    openapi_extra=_BODY_DOC,
    description=f"The body is refused over {MAX_AUTH_BODY} bytes (by Content-Length, or "
    "while it streams in). A new identity becomes a pending device at most "
    "`pending_per_source` times per address per `pending_window` seconds, and only while "
    "fewer than `max_pending_devices` are pending (docs/security.md).",
)
async def auth_request(request: Request, state: State) -> Response:
    # api/body_limit.py stops the stream at MAX_AUTH_BODY: this never holds more
    body = await request.body()
    if len(body) > MAX_AUTH_BODY:
        raise TooLarge(f"auth request body over {MAX_AUTH_BODY} bytes")
    try:
        data = json.loads(body)
    except (json.JSONDecodeError, UnicodeDecodeError):
        raise BadRequest("auth request body is not JSON") from None
    except RecursionError:
        raise BadRequest("auth request body nests too deep") from None
    if not isinstance(data, dict) or "id_data" not in data or "pubkey" not in data:
        raise BadRequest("auth request needs id_data and pubkey")
    if not isinstance(data["pubkey"], str):
        raise BadRequest("pubkey must be a PEM string")
    identity = canonical_identity(data["id_data"])
    key = load_pubkey(data["pubkey"])
    try:
        # verified over the bytes received, never over a re-serialisation
        verify_signature(key, body, request.headers.get("x-men-signature"))
    except Unauthorized:
        state.metrics.auth_requests.labels("bad_signature").inc()
        raise
    pubkey = normalize_pubkey(data["pubkey"])
    s = state.settings
    guard = pending_guard(
        client_address(request), s.pending_per_source, s.pending_window, s.max_pending_devices
    )
    with state.db.write() as session:
        outcome = submit_auth_request(session, identity, pubkey, guard)
    if not outcome.accepted:
        state.metrics.auth_requests.labels("not_accepted").inc()
        log.info("auth request not accepted", extra={"device": outcome.device_id})
        raise Unauthorized("device is not accepted (yet)")
    state.metrics.auth_requests.labels("accepted").inc()
    token = state.tokens.issue(
        outcome.device_id, "device", state.settings.device_token_ttl, outcome.auth_set_id
    )
    return Response(token, media_type="application/jwt")
