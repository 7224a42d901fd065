"""Background jobs run by the server itself (in-process broker in the embedded mode; on
PostgreSQL the server's receiver reads the Redis stream): order mails with both bodies,
low-stock alerts, retries with backoff, duplicate deliveries, the outbox written in the
transaction of its cause, and the clean-up of expired tokens and abandoned carts."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator
from datetime import timedelta
from decimal import Decimal
from typing import Any

import pytest
from sqlalchemy import insert, select, text

from app.db.outbox import jobs as outbox
from app.models.base import utcnow
from app.platform.crypto import DataCipher
from app.platform.jobs import JobRequest, send_job, wait_idle
from app.platform.sealed_users import open_email
from app.services.accounts.rules import refresh_tokens, users
from app.services.cart.rules import carts
from app.services.jobs.capture import capture_payment
from app.services.jobs.cleanup import clean_up
from app.services.jobs.context import JobContext, JobRun
from app.services.jobs.runner import run_job
from app.services.payments.gateway import SandboxGateway
from tests.checkout_shop import (
    checkout,
    fill_cart,
    new_customer,
    paid,
    stock_of,
    variant_with_stock,
)
from tests.conftest import Backend, GraphQLClient
from tests.private_shop import Shop, jobs_idle, private_shop
from tests.smtp_server import SmtpServer, smtp_server

SHIPPING_MINOR = 495
THRESHOLD = 3
UPDATE_STATUS = """
mutation ($id: ID!, $status: OrderStatus!) {
  updateOrderStatus(orderId: $id, status: $status) { order { status } userErrors { code } }
}"""


@pytest.fixture(scope="module")
async def smtp() -> AsyncIterator[SmtpServer]:
    async with smtp_server() as server:
        yield server


@pytest.fixture(scope="module")
async def shop(
    backend: Backend, tmp_path_factory: pytest.TempPathFactory, smtp: SmtpServer
) -> AsyncIterator[Shop]:
    """A private shop whose server runs its jobs, mailing to the test's SMTP server."""
    label = "jobs"
    async with private_shop(
        backend,
        tmp_path_factory.mktemp(label),
        label,
        shipping_fee_minor=SHIPPING_MINOR,
        jobs_in_process=True,
        jobs_stream=f"shopgraph-test:jobs:{uuid.uuid4().hex}",
        smtp_url=smtp.url,
        mail_from="Shop <no-reply@shop.example>",
        low_stock_threshold=THRESHOLD,
        job_backoff_seconds=0.4,
        outbox_relay_interval_seconds=0.2,
        job_lease_seconds=5,
        job_redelivery_seconds=6,
    ) as made:
        yield made
        await jobs_idle(made)  # no job is cut off mid-way when the server stops


async def _order_pk(shop: Shop, number: str) -> int:
    return int(await shop.value("SELECT id FROM orders WHERE number = :n", n=number))


async def _job(shop: Shop, key: str) -> Any:
    async with shop.db.read() as connection:
        return (await connection.execute(select(outbox).where(outbox.c.key == key))).one()


async def _done(shop: Shop, key: str) -> Any:
    """The outbox row of a job, once it is completed (its mail may arrive just before)."""
    for _ in range(200):
        job = await _job(shop, key)
        if job.completed_at is not None:
            return job
        await asyncio.sleep(0.05)
    raise AssertionError(f"job {key} not completed within 10 s: {job}")


async def _buy(shop: Shop, buyer: GraphQLClient, variant: dict[str, Any], quantity: int) -> Any:
    await fill_cart(buyer, variant["id"], quantity)
    payload = await checkout(buyer)
    assert payload["userErrors"] == [], payload
    return await paid(buyer, payload["order"])


def _parts(mail: Any) -> tuple[str, str]:
    text_part = mail.get_body(preferencelist=("plain",))
    html_part = mail.get_body(preferencelist=("html",))
    assert text_part is not None and html_part is not None
    return text_part.get_content(), html_part.get_content()


async def test_a_paid_checkout_mails_its_confirmation_once_with_lines_and_totals(
    shop: Shop, smtp: SmtpServer
) -> None:
    # given a customer who buys two units of a variant
    variant = await variant_with_stock(shop, 50)
    buyer = await new_customer(shop)
    order = await _buy(shop, buyer, variant, 2)
    pk = await _order_pk(shop, order["number"])

    # when the confirmation job has run
    mail = await smtp.inbox.wait_for(f"<order.{pk}.confirmation@shop.example>")

    # then it went to the customer, with a text and an HTML body naming the line and totals
    assert mail["To"] == buyer.email  # type: ignore[attr-defined]
    assert order["number"] in mail["Subject"]
    body, html = _parts(mail)
    line = order["lines"][0]
    unit = f"{variant['price']:,} EUR"
    total = f"{variant['price'] * 2 + Decimal(SHIPPING_MINOR) / 100:,} EUR"
    for part in (body, html):
        assert line["productName"] in part and line["sku"] in part
        assert unit in part and total in part and "Shipping" in part
    assert f"2 x {line['productName']}" in body
    assert "<td>2</td>" in html
    # and it is done in the outbox, after one attempt, and mailed once
    job = await _done(shop, f"order-mail:{pk}:confirmation")
    assert job.attempts == 1
    await asyncio.sleep(0.5)
    assert len(smtp.inbox.with_id(mail["Message-ID"])) == 1


async def test_a_job_delivered_twice_has_its_effect_once(shop: Shop, smtp: SmtpServer) -> None:
    # given an order whose confirmation was mailed
    variant = await variant_with_stock(shop, 50, offset=1)
    order = await _buy(shop, await new_customer(shop), variant, 1)
    pk = await _order_pk(shop, order["number"])
    message_id = f"<order.{pk}.confirmation@shop.example>"
    await smtp.inbox.wait_for(message_id)
    job = await _done(shop, f"order-mail:{pk}:confirmation")

    # when its message is delivered again, through the broker and straight to the runner
    jobs = shop.app.state.jobs
    await send_job(jobs.broker, name="order_mail", job_id=job.id)
    await send_job(jobs.broker, name="order_mail", job_id=job.id)
    await run_job(jobs.context, job.id)
    await wait_idle(jobs.broker)
    await asyncio.sleep(1.0)

    # then nothing ran again: one mail, one attempt
    assert len(smtp.inbox.with_id(message_id)) == 1
    assert (await _job(shop, job.key)).attempts == 1


async def test_a_failing_job_is_retried_with_backoff_until_it_succeeds(
    shop: Shop, smtp: SmtpServer
) -> None:
    # given an SMTP server that answers the next two deliveries "451 try again later"
    smtp.inbox.refuse_next = 2
    refused_before = smtp.inbox.refused
    variant = await variant_with_stock(shop, 50, offset=2)
    started = time.monotonic()

    # when an order is placed
    order = await _buy(shop, await new_customer(shop), variant, 1)
    pk = await _order_pk(shop, order["number"])
    await smtp.inbox.wait_for(f"<order.{pk}.confirmation@shop.example>")
    waited = time.monotonic() - started

    # then the mail came on the third attempt, after two backoffs (0.4 s, then 0.8 s)
    job = await _done(shop, f"order-mail:{pk}:confirmation")
    assert smtp.inbox.refused - refused_before == 2
    assert job.attempts == 3
    assert "451" in job.last_error
    assert waited >= 0.4 + 0.8


async def test_a_status_change_mails_the_customer(shop: Shop, smtp: SmtpServer) -> None:
    # given a paid order
    variant = await variant_with_stock(shop, 50, offset=3)
    order = await _buy(shop, await new_customer(shop), variant, 1)
    pk = await _order_pk(shop, order["number"])

    # when staff move it on
    data = await shop.staff.query(UPDATE_STATUS, {"id": order["id"], "status": "FULFILLED"})
    assert data["updateOrderStatus"]["userErrors"] == []

    # then the customer gets that status's mail, with the order's lines
    mail = await smtp.inbox.wait_for(f"<order.{pk}.FULFILLED@shop.example>")
    body, _ = _parts(mail)
    assert "Status: FULFILLED" in body and order["lines"][0]["sku"] in body


async def test_a_checkout_that_takes_stock_to_the_threshold_alerts_staff_once(
    shop: Shop, smtp: SmtpServer
) -> None:
    # given a variant with stock 5 and a low-stock threshold of 3
    variant = await variant_with_stock(shop, THRESHOLD + 2, offset=4)
    staff_emails = set(await shop.rows("SELECT email FROM users WHERE role IN ('STAFF', 'ADMIN')"))

    # when one checkout takes it to 3 (crossing) and another to 2 (below already)
    first = await _buy(shop, await new_customer(shop), variant, 2)
    second = await _buy(shop, await new_customer(shop), variant, 1)
    first_pk = await _order_pk(shop, first["number"])
    second_pk = await _order_pk(shop, second["number"])

    # then staff got one alert, for the first order, naming the SKU and the stock left
    alert = await smtp.inbox.wait_for(f"<low-stock.{variant['pk']}.{first_pk}@shop.example>")
    assert {address.strip() for address in alert["To"].split(",")} == {
        open_email(DataCipher.from_settings(shop.settings), row.email) for row in staff_emails
    }
    body, html = _parts(alert)
    assert f"{variant['sku']} is down to {THRESHOLD} units" in body and variant["sku"] in html
    await smtp.inbox.wait_for(f"<order.{second_pk}.confirmation@shop.example>")
    assert smtp.inbox.with_id(f"<low-stock.{variant['pk']}.{second_pk}@shop.example>") == []
    assert (
        await shop.value(
            "SELECT count(*) FROM job_outbox WHERE key LIKE :k", k=f"low-stock:{variant['pk']}:%"
        )
        == 1
    )


async def test_a_rolled_back_unit_of_work_leaves_no_job_and_a_committed_one_has_it(
    shop: Shop,
) -> None:
    # given two units of work asking for a job each; the first fails before its commit
    key = f"test-job:{uuid.uuid4().hex}"
    with pytest.raises(RuntimeError):
        async with shop.db.unit_of_work() as work:
            work.enqueue(JobRequest("clean_up", f"{key}:rolled-back"))
            raise RuntimeError("the change fails")
    async with shop.db.unit_of_work() as work:
        work.enqueue(JobRequest("clean_up", f"{key}:committed"))
        work.enqueue(JobRequest("clean_up", f"{key}:committed"))  # same cause: one job

    # then only the committed one is in the outbox, once
    keys = [row.key for row in await shop.rows(
        "SELECT key FROM job_outbox WHERE key LIKE :k", k=f"{key}%"
    )]  # fmt: skip
    assert keys == [f"{key}:committed"]


async def test_a_declined_checkout_asks_for_no_job(shop: Shop) -> None:
    # given a cart and a card that is declined
    variant = await variant_with_stock(shop, 50, offset=5)
    buyer = await new_customer(shop)
    await fill_cart(buyer, variant["id"], 1)
    before = await shop.value("SELECT count(*) FROM job_outbox")

    # when the customer checks out
    payload = await checkout(buyer, payment_token="tok_declined")

    # then there is no order, and no job
    assert [error["code"] for error in payload["userErrors"]] == ["PAYMENT_DECLINED"]
    assert await shop.value("SELECT count(*) FROM job_outbox") == before


async def test_the_clean_up_deletes_only_expired_tokens_and_abandoned_carts(shop: Shop) -> None:
    # given refresh tokens expired and not, and carts untouched for long and recently
    now = utcnow()
    days = shop.settings.abandoned_cart_days
    tag = uuid.uuid4().hex[:10]
    async with shop.db.engine.begin() as connection:
        user_id = (
            await connection.execute(select(users.c.id).order_by(users.c.id).limit(1))
        ).scalar_one()
        tokens = {"expired": now - timedelta(minutes=1), "valid": now + timedelta(days=1)}
        for name, expires in tokens.items():
            await connection.execute(
                insert(refresh_tokens).values(
                    user_id=user_id, family_id=str(uuid.uuid4()), token_hash=f"{tag}-{name}",
                    created_at=now - timedelta(days=2), expires_at=expires,
                )
            )  # fmt: skip
        ages = {"abandoned": days + 1, "recent": days - 1}
        for name, age in ages.items():
            await connection.execute(
                insert(carts).values(
                    token=f"{tag}-{name}", user_id=None,
                    created_at=now - timedelta(days=age), updated_at=now - timedelta(days=age),
                )
            )  # fmt: skip

    # when the clean-up job runs
    await clean_up(shop.app.state.jobs.context, {"slot": 0}, JobRun(0, 1, last=False))

    # then the expired token and the abandoned cart are gone, the others stay
    left_tokens = await shop.rows(
        "SELECT token_hash FROM refresh_tokens WHERE token_hash LIKE :t", t=f"{tag}%"
    )
    left_carts = await shop.rows("SELECT token FROM carts WHERE token LIKE :t", t=f"{tag}%")
    assert [row.token_hash for row in left_tokens] == [f"{tag}-valid"]
    assert [row.token for row in left_carts] == [f"{tag}-recent"]


async def test_the_server_asks_for_the_clean_up_once_per_interval_slot(shop: Shop) -> None:
    # given the server started (its timer asks for the clean-up of the current slot)
    slot = int(time.time() // shop.settings.cleanup_interval_seconds)

    # then there is one clean-up job for this slot, and it ran
    async with asyncio.timeout(10):
        while True:
            rows = await shop.rows(
                "SELECT completed_at FROM job_outbox WHERE key = :k", k=f"clean-up:{slot}"
            )
            if rows and rows[0].completed_at is not None:
                break
            await asyncio.sleep(0.1)
    async with shop.db.read() as connection:
        count = (
            await connection.execute(
                text("SELECT count(*) FROM job_outbox WHERE name = 'clean_up'")
            )
        ).scalar_one()
    assert count >= 1


CANCEL = """
mutation ($id: ID!) { cancelOrder(orderId: $id) { order { status } userErrors { code } } }"""


async def _payment_of(shop: Shop, order_pk: int) -> Any:
    (row,) = await shop.rows("SELECT * FROM payments WHERE order_id = :o", o=order_pk)
    return row


async def test_a_capture_delivered_again_captures_once(shop: Shop) -> None:
    # given a paid order (its capture job done)
    variant = await variant_with_stock(shop, 50, offset=6)
    order = await _buy(shop, await new_customer(shop), variant, 1)
    pk = await _order_pk(shop, order["number"])
    payment = await _payment_of(shop, pk)
    job = await _done(shop, f"capture:{payment.id}")

    # when its capture is delivered again, and run again even past the outbox's record
    jobs = shop.app.state.jobs
    await send_job(jobs.broker, name="capture_payment", job_id=job.id)
    await capture_payment(jobs.context, {"payment_id": payment.id}, JobRun(job.id, 9, last=True))
    await wait_idle(jobs.broker)

    # then the payment was captured once: one CAPTURED step, the order PAID
    steps = await shop.rows(
        "SELECT status FROM payment_events WHERE payment_id = :p ORDER BY id", p=payment.id
    )
    assert [row.status for row in steps] == ["AUTHORIZED", "CAPTURED"]
    assert (await _payment_of(shop, pk)).capture_ref is not None
    assert await shop.value("SELECT status FROM orders WHERE id = :o", o=pk) == "PAID"


async def test_an_order_cancelled_before_its_capture_is_not_captured(shop: Shop) -> None:
    # given an order put back as it was before its capture ran (PENDING_PAYMENT, AUTHORIZED)
    variant = await variant_with_stock(shop, 50, offset=7)
    buyer = await new_customer(shop)
    await fill_cart(buyer, variant["id"], 2)
    order = await paid(buyer, (await checkout(buyer))["order"])
    await jobs_idle(shop)
    pk = await _order_pk(shop, order["number"])
    payment = await _payment_of(shop, pk)
    await _before_capture(shop, pk, payment.id)

    # when the customer cancels it, and then its capture job runs (delivered late)
    data = await buyer.query(CANCEL, {"id": order["id"]})
    assert data["cancelOrder"] == {"order": {"status": "CANCELLED"}, "userErrors": []}
    await capture_payment(
        shop.app.state.jobs.context, {"payment_id": payment.id}, JobRun(0, 2, last=False)
    )

    # then nothing was captured, and the stock is back once
    assert (await _payment_of(shop, pk)).status == "AUTHORIZED"
    assert await shop.value("SELECT status FROM orders WHERE id = :o", o=pk) == "CANCELLED"
    assert await stock_of(shop, variant) == 50


async def _before_capture(shop: Shop, order_pk: int, payment_id: int) -> None:
    """Put a paid order back as checkout left it: PENDING_PAYMENT, its payment AUTHORIZED."""
    async with shop.db.engine.begin() as connection:
        await connection.execute(
            text("UPDATE orders SET status = 'PENDING_PAYMENT' WHERE id = :o"), {"o": order_pk}
        )
        await connection.execute(
            text("UPDATE payments SET status = 'AUTHORIZED' WHERE id = :p"), {"p": payment_id}
        )


async def test_a_capture_failing_on_its_last_attempt_fails_the_payment_and_returns_stock(
    shop: Shop, smtp: SmtpServer
) -> None:
    # given a tok_transient order, put back as it was before its capture (order
    # PENDING_PAYMENT, payment AUTHORIZED), and a gateway that has not seen it
    # (its first capture attempt fails)
    variant = await variant_with_stock(shop, 50, offset=8)
    buyer = await new_customer(shop)
    await fill_cart(buyer, variant["id"], 3)
    payload = await checkout(buyer, payment_token="tok_transient")
    await paid(buyer, payload["order"])
    await jobs_idle(shop)
    pk = await _order_pk(shop, payload["order"]["number"])
    payment = await _payment_of(shop, pk)
    await _before_capture(shop, pk, payment.id)
    context = shop.app.state.jobs.context
    fresh = JobContext(
        db=context.db, settings=context.settings, mail=context.mail, gateway=SandboxGateway()
    )
    before = await stock_of(shop, variant)

    # when the capture fails transiently on the job's last attempt
    last = JobRun(0, shop.settings.job_max_attempts, last=True)
    await capture_payment(fresh, {"payment_id": payment.id}, last)

    # then the order is PAYMENT_FAILED, the payment FAILED, its stock back, the customer told
    assert await shop.value("SELECT status FROM orders WHERE id = :o", o=pk) == "PAYMENT_FAILED"
    assert (await _payment_of(shop, pk)).status == "FAILED"
    assert await stock_of(shop, variant) == before + 3
    mail = await smtp.inbox.wait_for(f"<order.{pk}.PAYMENT-FAILED@shop.example>")
    assert "Payment failed" in mail["Subject"]

    # and cancelling it then does not give the stock back a second time
    data = await buyer.query(CANCEL, {"id": payload["order"]["id"]})
    assert data["cancelOrder"] == {"order": {"status": "CANCELLED"}, "userErrors": []}
    assert await stock_of(shop, variant) == before + 3
