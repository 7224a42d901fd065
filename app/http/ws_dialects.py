"""The two WebSocket subprotocols of GraphQL: their message names, codes and shapes.

- `graphql-transport-ws` (the graphql-ws library; github.com/enisdenjo/graphql-ws,
  PROTOCOL.md): connection_init/ack, ping/pong both ways, subscribe, next, error,
  complete; protocol errors close the socket with 44xx codes.
- `graphql-ws`, the legacy subscriptions-transport-ws protocol (Apollo's old client):
  connection_init/ack/error, ka, start, data, error, complete, stop,
  connection_terminate.

The session (app/http/websocket.py) speaks both through one `Dialect`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Final

GRAPHQL_TRANSPORT_WS: Final = "graphql-transport-ws"
GRAPHQL_WS: Final = "graphql-ws"


class CloseCode:
    """Close codes (graphql-transport-ws's, used for the legacy protocol too)."""

    GOING_AWAY: Final = 1001  # the server is shutting down: reconnect elsewhere
    POLICY_VIOLATION: Final = 1008  # too many connections for this viewer
    MESSAGE_TOO_BIG: Final = 1009
    BAD_MESSAGE: Final = 4400
    UNAUTHORIZED: Final = 4401  # an operation before connection_ack
    FORBIDDEN: Final = 4403  # the token was refused, or has expired
    SUBPROTOCOL_NOT_ACCEPTABLE: Final = 4406
    INIT_TIMEOUT: Final = 4408
    DUPLICATE_ID: Final = 4409
    TOO_MANY_INITS: Final = 4429


@dataclass(frozen=True, slots=True)
class Dialect:
    """How one subprotocol names and shapes what the session sends and receives."""

    name: str
    subscribe: str  # an operation starts
    stop: str  # the client stops an operation
    next: str  # one result of an operation
    keep_alive: dict[str, Any]  # what the server sends while idle
    # Whether an operation the client stopped still gets a `complete` from the server.
    complete_after_stop: bool
    # Whether a repeated operation id closes the socket (or replaces the operation).
    duplicate_id_closes: bool

    def error(self, operation_id: str, errors: list[dict[str, Any]]) -> dict[str, Any]:
        """An operation that failed before, or instead of, a result."""
        if self.name == GRAPHQL_TRANSPORT_WS:
            return {"type": "error", "id": operation_id, "payload": errors}
        return {"type": "error", "id": operation_id, "payload": errors[0] if errors else {}}

    def init_refused(self, message: str) -> dict[str, Any] | None:
        """What to send before closing on a refused connection_init (None: just close)."""
        if self.name == GRAPHQL_TRANSPORT_WS:
            return None
        return {"type": "connection_error", "payload": {"message": message}}


TRANSPORT_WS: Final = Dialect(
    name=GRAPHQL_TRANSPORT_WS,
    subscribe="subscribe",
    stop="complete",
    next="next",
    keep_alive={"type": "ping"},
    complete_after_stop=False,
    duplicate_id_closes=True,
)
LEGACY_WS: Final = Dialect(
    name=GRAPHQL_WS,
    subscribe="start",
    stop="stop",
    next="data",
    keep_alive={"type": "ka"},
    complete_after_stop=True,
    duplicate_id_closes=False,
)
DIALECTS: Final = {GRAPHQL_TRANSPORT_WS: TRANSPORT_WS, GRAPHQL_WS: LEGACY_WS}


def authorization_of(payload: Any) -> str | None:
    """The `Authorization` value a connection_init payload carries, in the usual spellings.

    `{"Authorization": "Bearer t"}`, `{"authorization": ...}`, `{"headers": {...}}` (as
    Apollo's clients send it), or the bare token as `token` / `accessToken`.
    """
    if not isinstance(payload, dict):
        return None
    headers = payload.get("headers")
    for source in (payload, headers if isinstance(headers, dict) else {}):
        for key in ("Authorization", "authorization"):
            value = source.get(key)
            if isinstance(value, str):
                return value
    for key in ("token", "accessToken"):
        value = payload.get(key)
        if isinstance(value, str):
            return f"Bearer {value}"
    return None


__all__ = [
    "DIALECTS",
    "GRAPHQL_TRANSPORT_WS",
    "GRAPHQL_WS",
    "LEGACY_WS",
    "TRANSPORT_WS",
    "CloseCode",
    "Dialect",
    "authorization_of",
]
