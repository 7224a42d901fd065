"""Payment gateways: the interface checkout speaks, and the built-in test gateway.

Amounts are integer minor units with an ISO 4217 currency (as app/platform/money.py
stores them). Every call carries an idempotency key: the same key with the same
request returns the same result (an authorization is made once however often the
call is retried); the same key with another request is IdempotencyKeyReused.

An answer is a result or a `Declined` (an expected outcome, e.g. a declined card);
`TransientGatewayError` means nothing was decided and the same call, with the same
key, may be retried later.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from enum import StrEnum
from typing import Protocol, TypeVar

R = TypeVar("R")
_Answers = dict[str, tuple[tuple[object, ...], R]]  # idempotency key -> request, result

TOKEN_SUCCESS = "tok_success"
TOKEN_DECLINED = "tok_declined"
TOKEN_TRANSIENT = "tok_transient"


class DeclineReason(StrEnum):
    """Why a gateway said no."""

    CARD_DECLINED = "CARD_DECLINED"
    INVALID_TOKEN = "INVALID_TOKEN"
    AMOUNT_TOO_LARGE = "AMOUNT_TOO_LARGE"  # more than authorized, or than left to refund
    ALREADY_CAPTURED = "ALREADY_CAPTURED"
    NOT_CONFIGURED = "NOT_CONFIGURED"  # the server has no payment gateway


@dataclass(frozen=True, slots=True)
class Authorization:
    """Funds held on the customer's payment method."""

    authorization_id: str
    amount: int
    currency: str


@dataclass(frozen=True, slots=True)
class Capture:
    """Held funds taken."""

    capture_id: str
    authorization_id: str
    amount: int
    currency: str


@dataclass(frozen=True, slots=True)
class Refund:
    """Captured funds given back (all or part)."""

    refund_id: str
    capture_id: str
    amount: int
    currency: str


@dataclass(frozen=True, slots=True)
class Declined:
    """The gateway refused; final for this request (retrying it is declined again)."""

    reason: DeclineReason
    message: str


class GatewayError(Exception):
    """The gateway could not answer the request as asked."""


class TransientGatewayError(GatewayError):
    """Nothing was decided (a timeout, an outage): retry the same call with the same key."""


class IdempotencyKeyReused(GatewayError):
    """The idempotency key was used before for a different request."""


class UnknownPayment(GatewayError):
    """The authorization or capture id names nothing this gateway issued."""


class PaymentGateway(Protocol):
    """What checkout, capture and refund jobs need of a payment provider."""

    @property
    def name(self) -> str:
        """The gateway's name as payments record it."""
        ...

    async def authorize(
        self, *, amount: int, currency: str, token: str, idempotency_key: str
    ) -> Authorization | Declined:
        """Hold `amount` on the payment method `token` stands for."""
        ...

    async def capture(
        self, *, authorization_id: str, amount: int, idempotency_key: str
    ) -> Capture | Declined:
        """Take `amount` (at most what was authorized) of an authorization."""
        ...

    async def refund(
        self, *, capture_id: str, amount: int, idempotency_key: str
    ) -> Refund | Declined:
        """Give back `amount` (at most what is left) of a capture."""
        ...


class NoGateway:
    """No payment provider: every authorization is declined, nothing is held or charged.

    What a production server without a configured gateway runs, so the test gateway's
    tokens never pay for a real order.
    """

    name = "none"
    _declined = Declined(
        DeclineReason.NOT_CONFIGURED,
        "Payments are not configured on this server (SHOPGRAPH_PAYMENT_GATEWAY)",
    )

    async def authorize(
        self, *, amount: int, currency: str, token: str, idempotency_key: str
    ) -> Authorization | Declined:
        """Decline: there is no provider to hold the amount."""
        return self._declined

    async def capture(
        self, *, authorization_id: str, amount: int, idempotency_key: str
    ) -> Capture | Declined:
        """Decline: nothing was ever authorized here."""
        return self._declined

    async def refund(
        self, *, capture_id: str, amount: int, idempotency_key: str
    ) -> Refund | Declined:
        """Decline: nothing was ever captured here."""
        return self._declined


# The test gateway's ids carry what it needs to know about them (behaviour, amount and
# currency), so a capture in another process (the worker) than the authorization's
# (the server) still works: `auth_<behaviour>_<amount>_<currency>_<digest>`.
_ID = re.compile(r"^(auth|cap)_(success|transient)_(\d+)_([A-Z]{3})_([0-9a-f]{24})$")
_BEHAVIOURS = {TOKEN_SUCCESS: "success", TOKEN_TRANSIENT: "transient"}


@dataclass(frozen=True, slots=True)
class _Issued:
    kind: str
    behaviour: str
    amount: int
    currency: str


class SandboxGateway:
    """The built-in test gateway (development and tests; no money moves).

    `tok_success` is authorized, then captured; `tok_declined` is declined
    (CARD_DECLINED, checkout's PAYMENT_DECLINED); `tok_transient` is authorized, and the
    first capture attempt of its authorization fails with TransientGatewayError,
    the retry succeeds. Any other token is declined as INVALID_TOKEN.

    What it remembers (idempotency keys, captures and refunds, failed attempts) lives
    in the instance: use one per process. Ids are deterministic in the idempotency key,
    so another process answers a retried request with the same ids.
    """

    name = "test"

    def __init__(self) -> None:
        self._authorizations: _Answers[Authorization | Declined] = {}
        self._captures: _Answers[Capture | Declined] = {}
        self._refunds: _Answers[Refund | Declined] = {}
        self._captured: dict[str, int] = {}  # authorization id -> amount captured
        self._refunded: dict[str, int] = {}  # capture id -> amount refunded
        self._failed_captures: set[str] = set()  # authorizations whose first attempt failed

    async def authorize(
        self, *, amount: int, currency: str, token: str, idempotency_key: str
    ) -> Authorization | Declined:
        """Hold the amount, or decline as the token says."""
        _check_amount(amount, currency)
        request = (amount, currency, token)
        if (known := _replay(self._authorizations, idempotency_key, request)) is not None:
            return known
        result: Authorization | Declined
        behaviour = _BEHAVIOURS.get(token)
        if token == TOKEN_DECLINED:
            result = Declined(DeclineReason.CARD_DECLINED, "The card was declined")
        elif behaviour is None:
            result = Declined(DeclineReason.INVALID_TOKEN, "The payment token is not valid")
        else:
            issued = _new_id("auth", behaviour, amount, currency, idempotency_key)
            result = Authorization(issued, amount, currency)
        self._authorizations[idempotency_key] = (request, result)
        return result

    async def capture(
        self, *, authorization_id: str, amount: int, idempotency_key: str
    ) -> Capture | Declined:
        """Take funds of an authorization; a `tok_transient` one fails its first attempt."""
        authorization = _parse_id(authorization_id, "auth")
        _check_amount(amount, authorization.currency)
        request = (authorization_id, amount)
        if (known := _replay(self._captures, idempotency_key, request)) is not None:
            return known
        if authorization.behaviour == "transient" and authorization_id not in self._failed_captures:
            self._failed_captures.add(authorization_id)
            raise TransientGatewayError("The test gateway failed this capture attempt; retry it")
        result: Capture | Declined
        if authorization_id in self._captured:
            result = Declined(DeclineReason.ALREADY_CAPTURED, "The authorization was captured")
        elif amount > authorization.amount:
            result = Declined(DeclineReason.AMOUNT_TOO_LARGE, "More than was authorized")
        else:
            self._captured[authorization_id] = amount
            issued = _new_id(
                "cap", authorization.behaviour, amount, authorization.currency, idempotency_key
            )
            result = Capture(issued, authorization_id, amount, authorization.currency)
        self._captures[idempotency_key] = (request, result)
        return result

    async def refund(
        self, *, capture_id: str, amount: int, idempotency_key: str
    ) -> Refund | Declined:
        """Give back funds of a capture, in one or several refunds."""
        capture = _parse_id(capture_id, "cap")
        _check_amount(amount, capture.currency)
        request = (capture_id, amount)
        if (known := _replay(self._refunds, idempotency_key, request)) is not None:
            return known
        result: Refund | Declined
        refunded = self._refunded.get(capture_id, 0)
        if refunded + amount > capture.amount:
            result = Declined(DeclineReason.AMOUNT_TOO_LARGE, "More than is left to refund")
        else:
            self._refunded[capture_id] = refunded + amount
            digest = _digest("ref", capture_id, idempotency_key)
            result = Refund(f"ref_{digest}", capture_id, amount, capture.currency)
        self._refunds[idempotency_key] = (request, result)
        return result


def _replay(answers: _Answers[R], key: str, request: tuple[object, ...]) -> R | None:
    """The earlier answer to this key, None if there is none; IdempotencyKeyReused if it was
    given to another request."""
    if not key:
        raise ValueError("an idempotency key is required")
    known = answers.get(key)
    if known is None:
        return None
    if known[0] != request:
        raise IdempotencyKeyReused("the idempotency key was used for another request")
    return known[1]


def _check_amount(amount: int, currency: str) -> None:
    if isinstance(amount, bool) or not isinstance(amount, int) or amount <= 0:
        raise ValueError("the amount must be a positive number of minor units")
    if not re.fullmatch(r"[A-Z]{3}", currency):
        raise ValueError("the currency must be an ISO 4217 code, e.g. EUR")


def _digest(*parts: str) -> str:
    return hashlib.sha256("\x00".join(parts).encode()).hexdigest()[:24]


def _new_id(kind: str, behaviour: str, amount: int, currency: str, key: str) -> str:
    digest = _digest(kind, behaviour, str(amount), currency, key)
    return f"{kind}_{behaviour}_{amount}_{currency}_{digest}"


def _parse_id(issued: str, kind: str) -> _Issued:
    match = _ID.match(issued)
    if match is None or match.group(1) != kind:
        raise UnknownPayment(f"{issued[:80]!r} is no {kind} id of the test gateway")
    return _Issued(kind, match.group(2), int(match.group(3)), match.group(4))
