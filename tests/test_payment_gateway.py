"""The built-in test gateway: its tokens behave as the API sketch says, and every call is
idempotent by its key."""

from __future__ import annotations

import pytest

from app.services.payments.gateway import (
    TOKEN_DECLINED,
    TOKEN_SUCCESS,
    TOKEN_TRANSIENT,
    Authorization,
    Capture,
    Declined,
    DeclineReason,
    IdempotencyKeyReused,
    PaymentGateway,
    Refund,
    SandboxGateway,
    TransientGatewayError,
    UnknownPayment,
)


@pytest.fixture
def gateway() -> SandboxGateway:
    return SandboxGateway()


async def _authorized(gateway: PaymentGateway, token: str, key: str = "order-1") -> Authorization:
    result = await gateway.authorize(amount=4990, currency="EUR", token=token, idempotency_key=key)
    assert isinstance(result, Authorization), result
    return result


def test_the_test_gateway_is_a_payment_gateway() -> None:
    gateway: PaymentGateway = SandboxGateway()

    assert gateway.name == "test"


async def test_tok_success_is_authorized_then_captured(gateway: SandboxGateway) -> None:
    authorization = await _authorized(gateway, TOKEN_SUCCESS)

    capture = await gateway.capture(
        authorization_id=authorization.authorization_id, amount=4990, idempotency_key="cap-1"
    )

    assert (authorization.amount, authorization.currency) == (4990, "EUR")
    assert isinstance(capture, Capture)
    assert capture.authorization_id == authorization.authorization_id
    assert (capture.amount, capture.currency) == (4990, "EUR")


async def test_tok_declined_is_declined(gateway: SandboxGateway) -> None:
    result = await gateway.authorize(
        amount=4990, currency="EUR", token=TOKEN_DECLINED, idempotency_key="order-1"
    )

    assert isinstance(result, Declined)
    assert result.reason is DeclineReason.CARD_DECLINED


async def test_an_unknown_token_is_declined_as_invalid(gateway: SandboxGateway) -> None:
    result = await gateway.authorize(
        amount=100, currency="EUR", token="tok_bogus", idempotency_key="order-1"
    )

    assert result == Declined(DeclineReason.INVALID_TOKEN, "The payment token is not valid")


async def test_tok_transient_fails_the_first_capture_attempt_and_succeeds_on_retry(
    gateway: SandboxGateway,
) -> None:
    # given an authorization of the transient token
    authorization = await _authorized(gateway, TOKEN_TRANSIENT)
    capture = {
        "authorization_id": authorization.authorization_id,
        "amount": 4990,
        "idempotency_key": "cap-1",
    }

    # when it is captured, then the first attempt fails transiently
    with pytest.raises(TransientGatewayError):
        await gateway.capture(**capture)  # type: ignore[arg-type]

    # and the retry with the same key succeeds, once
    retried = await gateway.capture(**capture)  # type: ignore[arg-type]
    assert isinstance(retried, Capture)
    assert await gateway.capture(**capture) == retried  # type: ignore[arg-type]


async def test_the_same_key_returns_the_same_authorization(gateway: SandboxGateway) -> None:
    first = await _authorized(gateway, TOKEN_SUCCESS, key="order-7")
    again = await _authorized(gateway, TOKEN_SUCCESS, key="order-7")
    other = await _authorized(gateway, TOKEN_SUCCESS, key="order-8")

    assert again == first
    assert other.authorization_id != first.authorization_id


async def test_another_process_answers_a_retried_authorization_with_the_same_id() -> None:
    # The worker and the server each have their own gateway instance.
    first = await _authorized(SandboxGateway(), TOKEN_SUCCESS, key="order-7")
    again = await _authorized(SandboxGateway(), TOKEN_SUCCESS, key="order-7")

    assert again == first


async def test_another_instance_captures_an_authorization_it_did_not_make() -> None:
    authorization = await _authorized(SandboxGateway(), TOKEN_SUCCESS)

    capture = await SandboxGateway().capture(
        authorization_id=authorization.authorization_id, amount=4990, idempotency_key="cap-1"
    )

    assert isinstance(capture, Capture)


async def test_a_declined_answer_is_repeated_for_its_key(gateway: SandboxGateway) -> None:
    first = await gateway.authorize(
        amount=100, currency="EUR", token=TOKEN_DECLINED, idempotency_key="k"
    )

    assert (
        await gateway.authorize(
            amount=100, currency="EUR", token=TOKEN_DECLINED, idempotency_key="k"
        )
        == first
    )


@pytest.mark.parametrize(
    "changed", [{"amount": 5000}, {"currency": "USD"}, {"token": TOKEN_TRANSIENT}]
)
async def test_a_key_reused_for_another_request_is_refused(
    gateway: SandboxGateway, changed: dict[str, object]
) -> None:
    await _authorized(gateway, TOKEN_SUCCESS, key="order-1")
    request: dict[str, object] = {
        "amount": 4990,
        "currency": "EUR",
        "token": TOKEN_SUCCESS,
        "idempotency_key": "order-1",
    }

    with pytest.raises(IdempotencyKeyReused):
        await gateway.authorize(**{**request, **changed})  # type: ignore[arg-type]


async def test_a_capture_is_made_once_per_key_and_once_per_authorization(
    gateway: SandboxGateway,
) -> None:
    authorization = await _authorized(gateway, TOKEN_SUCCESS)
    auth_id = authorization.authorization_id

    first = await gateway.capture(authorization_id=auth_id, amount=4990, idempotency_key="c1")
    again = await gateway.capture(authorization_id=auth_id, amount=4990, idempotency_key="c1")
    second = await gateway.capture(authorization_id=auth_id, amount=4990, idempotency_key="c2")

    assert again == first
    assert second == Declined(DeclineReason.ALREADY_CAPTURED, "The authorization was captured")
    with pytest.raises(IdempotencyKeyReused):
        await gateway.capture(authorization_id=auth_id, amount=100, idempotency_key="c1")


async def test_a_capture_over_the_authorized_amount_is_declined(gateway: SandboxGateway) -> None:
    authorization = await _authorized(gateway, TOKEN_SUCCESS)

    result = await gateway.capture(
        authorization_id=authorization.authorization_id, amount=4991, idempotency_key="c1"
    )

    assert isinstance(result, Declined)
    assert result.reason is DeclineReason.AMOUNT_TOO_LARGE


async def test_refunds_give_back_at_most_what_was_captured(gateway: SandboxGateway) -> None:
    authorization = await _authorized(gateway, TOKEN_SUCCESS)
    capture = await gateway.capture(
        authorization_id=authorization.authorization_id, amount=4990, idempotency_key="c1"
    )
    assert isinstance(capture, Capture)

    part = await gateway.refund(capture_id=capture.capture_id, amount=990, idempotency_key="r1")
    again = await gateway.refund(capture_id=capture.capture_id, amount=990, idempotency_key="r1")
    too_much = await gateway.refund(
        capture_id=capture.capture_id, amount=4001, idempotency_key="r2"
    )
    rest = await gateway.refund(capture_id=capture.capture_id, amount=4000, idempotency_key="r3")

    assert isinstance(part, Refund) and part.amount == 990 and part.currency == "EUR"
    assert again == part
    assert isinstance(too_much, Declined) and too_much.reason is DeclineReason.AMOUNT_TOO_LARGE
    assert isinstance(rest, Refund) and rest.refund_id != part.refund_id


async def test_ids_the_gateway_never_issued_are_unknown(gateway: SandboxGateway) -> None:
    authorization = await _authorized(gateway, TOKEN_SUCCESS)

    with pytest.raises(UnknownPayment):
        await gateway.capture(authorization_id="auth_bogus", amount=1, idempotency_key="c1")
    with pytest.raises(UnknownPayment):  # an authorization is no capture
        await gateway.refund(
            capture_id=authorization.authorization_id, amount=1, idempotency_key="r1"
        )


@pytest.mark.parametrize(
    ("amount", "currency", "key"),
    [(0, "EUR", "k"), (-1, "EUR", "k"), (True, "EUR", "k"), (100, "eur", "k"), (100, "EUR", "")],
)
async def test_bad_requests_are_refused_before_anything_is_decided(
    gateway: SandboxGateway, amount: int, currency: str, key: str
) -> None:
    with pytest.raises(ValueError):
        await gateway.authorize(
            amount=amount, currency=currency, token=TOKEN_SUCCESS, idempotency_key=key
        )
