"""POST /oauth/token: the OAuth 2.0 client credentials grant (RFC 6749 sections 2.3.1, 4.4, 5).

This module speaks the protocol only: it parses the form body and the client's
credentials (HTTP Basic or body parameters, never both), and answers tokens or
section 5.2 errors. Checking credentials and scopes is the job of the `issue`
callable it is given (app.services.partners); its domain errors are mapped here.
Before `issue` hashes anything, the `throttle` (per client id and per client IP)
reserves an attempt; once its budget of failures is spent the request is answered
429 with Retry-After and a section 5.2-shaped `temporarily_unavailable` body.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import math
from collections.abc import Awaitable, Callable
from urllib.parse import parse_qsl, unquote_plus

from starlette.requests import Request
from starlette.responses import JSONResponse

import app.services.partners as partners
from app.engine import DeadlinePassed, finish_by
from app.http.errors import logger
from app.http.pipeline import Translate
from app.platform.errors import Throttled
from app.platform.throttles import FailureThrottle
from app.services.partners import SCOPE_TOKEN, ClientCredentials, PartnerGrant

FORM = "application/x-www-form-urlencoded"
MAX_BODY_BYTES = 16_384
NO_STORE = {"Cache-Control": "no-store", "Pragma": "no-cache"}
BASIC_CHALLENGE = 'Basic realm="shopgraph", charset="UTF-8"'


class OAuthError(Exception):
    """A section 5.2 error response: `error` code, human description, HTTP status."""

    error = "invalid_request"
    status = 400

    def __init__(self, description: str) -> None:
        super().__init__(description)
        self.description = description


class InvalidRequest(OAuthError):
    """A parameter is missing, repeated or malformed, or two client authentications were used."""

    error = "invalid_request"


class InvalidClient(OAuthError):
    """Client authentication failed: unknown client, wrong secret, revoked, or none sent."""

    error = "invalid_client"
    status = 401


class UnsupportedGrantType(OAuthError):
    """This server only grants client_credentials."""

    error = "unsupported_grant_type"


class InvalidScope(OAuthError):
    """The requested scope is malformed or exceeds what the client may have."""

    error = "invalid_scope"


class TemporarilyUnavailable(OAuthError):
    """Too many failed attempts for this client id or IP: 429 with Retry-After."""

    error = "temporarily_unavailable"
    status = 429

    def __init__(self, description: str, retry_after: int) -> None:
        super().__init__(description)
        self.retry_after = retry_after


Issue = Callable[[ClientCredentials], Awaitable[PartnerGrant]]
# (client id, client IP) -> the throttle of that attempt
Throttle = Callable[[str, str], FailureThrottle]


def parse_scope(raw: str) -> list[str]:
    """A space-separated scope parameter as a list of unique scope tokens."""
    tokens = raw.split(" ")
    if not raw or any(not SCOPE_TOKEN.fullmatch(token) for token in tokens):
        raise InvalidScope("`scope` must be scope tokens separated by single spaces")
    return list(dict.fromkeys(tokens))


def _form(body: bytes) -> dict[str, str]:
    try:
        pairs = parse_qsl(body.decode("utf-8"), keep_blank_values=True, strict_parsing=False)
    except (UnicodeDecodeError, ValueError):
        raise InvalidRequest("The body must be UTF-8 application/x-www-form-urlencoded") from None
    form: dict[str, str] = {}
    for name, value in pairs:
        if name in form:
            raise InvalidRequest(f"The `{name}` parameter must not be repeated")
        form[name] = value
    return form


def _basic_credentials(authorization: str) -> tuple[str, str]:
    scheme, _, encoded = authorization.strip().partition(" ")
    if scheme.lower() != "basic":
        raise InvalidClient("Authenticate the client with HTTP Basic or body parameters")
    try:
        decoded = base64.b64decode(encoded.strip(), validate=True).decode("utf-8")
    except (binascii.Error, ValueError):
        raise InvalidClient("The Basic credentials are not valid base64 UTF-8") from None
    client_id, colon, client_secret = decoded.partition(":")
    if not colon:
        raise InvalidClient("The Basic credentials must be client_id:client_secret")
    # 2.3.1: both parts are form-urlencoded before they go into the Basic header.
    return unquote_plus(client_id), unquote_plus(client_secret)


def token_request(form: dict[str, str], authorization: str | None) -> ClientCredentials:
    """Check grant type, client authentication and scope syntax of a token request."""
    grant_type = form.get("grant_type")
    if not grant_type:
        raise InvalidRequest("The `grant_type` parameter is required")
    if grant_type != "client_credentials":
        raise UnsupportedGrantType("Only the client_credentials grant is supported")
    in_body = "client_id" in form or "client_secret" in form
    if authorization is not None and in_body:
        raise InvalidRequest("Authenticate the client with HTTP Basic or body parameters, not both")
    if authorization is not None:
        client_id, client_secret = _basic_credentials(authorization)
    elif in_body:
        client_id, client_secret = form.get("client_id", ""), form.get("client_secret", "")
    else:
        raise InvalidClient("Client authentication is required")
    if not client_id or not client_secret:
        raise InvalidClient("Both client_id and client_secret are required")
    scope = form.get("scope")
    return ClientCredentials(
        client_id, client_secret, None if scope is None else parse_scope(scope)
    )


def _refusal(error: partners.InvalidClient | partners.ScopeNotAllowed) -> OAuthError:
    """The section 5.2 error for a grant the partners service refused."""
    if isinstance(error, partners.InvalidClient):
        return InvalidClient(error.message)
    return InvalidScope(error.message)


def _error(error: OAuthError) -> JSONResponse:
    headers = dict(NO_STORE)
    if error.status == 401:
        headers["WWW-Authenticate"] = BASIC_CHALLENGE
    if isinstance(error, TemporarilyUnavailable):
        headers["Retry-After"] = str(error.retry_after)
    return JSONResponse(
        {"error": error.error, "error_description": error.description},
        status_code=error.status,
        headers=headers,
    )


class Unavailable(TemporarilyUnavailable):
    """A dependency (the database) cannot serve now: 503 with Retry-After."""

    status = 503


class TokenEndpoint:
    """The /oauth/token route; `issue` verifies the client and signs the token.

    Issuing runs within `time_limit` seconds; `translate` names the failures that are a
    dependency's (a database outage), answered 503 `temporarily_unavailable`.
    """

    def __init__(
        self,
        issue: Issue,
        *,
        throttle: Throttle | None = None,
        time_limit: float = math.inf,
        translate: Translate | None = None,
    ) -> None:
        self.issue = issue
        self.throttle = throttle
        self.time_limit = time_limit
        self.translate = translate

    async def handle(self, request: Request) -> JSONResponse:
        """Answer one token request."""
        try:
            content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
            if content_type != FORM:
                raise InvalidRequest(f"Send the parameters as `Content-Type: {FORM}`")
            body = await _bounded_body(request)
            credentials = token_request(_form(body), request.headers.get("authorization"))
            client_ip = request.client.host if request.client else "-"
            deadline = asyncio.get_running_loop().time() + self.time_limit
            grant = await finish_by(self._issue(credentials, client_ip), deadline)
        except OAuthError as error:
            return _error(error)
        except (partners.InvalidClient, partners.ScopeNotAllowed) as refused:
            return _error(_refusal(refused))
        except DeadlinePassed:
            return _error(Unavailable("The token request did not finish in time; retry", 1))
        except Exception as error:
            meaning = None if self.translate is None else self.translate(error)
            if meaning is None:
                raise
            logger.warning("token request failed on a dependency", cause=repr(error)[:300])
            return _error(Unavailable(meaning.message, 1))
        return JSONResponse(
            {
                "access_token": grant.access_token,
                "token_type": "Bearer",
                "expires_in": grant.expires_in,
                "scope": " ".join(grant.scopes),
            },
            headers=NO_STORE,
        )

    async def _issue(self, credentials: ClientCredentials, client_ip: str) -> PartnerGrant:
        """Issue under the throttle: the attempt is reserved first, given back on success."""
        if self.throttle is None:
            return await self.issue(credentials)
        throttle = self.throttle(credentials.client_id, client_ip)
        try:
            await throttle.reserve()
        except Throttled as refused:
            raise TemporarilyUnavailable(refused.message, int(refused.retry_after)) from None
        grant = await self.issue(credentials)  # a refusal keeps the attempt spent
        await throttle.release()
        return grant


async def _bounded_body(request: Request) -> bytes:
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > MAX_BODY_BYTES:
            raise InvalidRequest(f"The body must be at most {MAX_BODY_BYTES} bytes")
        chunks.append(chunk)
    return b"".join(chunks)
