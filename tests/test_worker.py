"""`shopgraph worker` processes on a Redis of the test's own: a checkout made while Redis is
stopped is captured and mails its confirmation once Redis is back, exactly once; a worker killed (SIGKILL)
in the middle of a job leaves it to another worker, and its mail arrives once."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Any

import pytest

from app.settings import Settings
from tests.checkout_shop import checkout, fill_cart, new_customer, variant_with_stock
from tests.conftest import Backend
from tests.private_shop import Shop, private_shop
from tests.redis_server import RedisServer, needs_redis_server
from tests.server_processes import SHOPGRAPH
from tests.smtp_server import smtp_server

pytestmark = needs_redis_server
MAIL_DOMAIN = "shop.example"
# What a worker process is given of the shop's settings.
PASSED = (
    "database_url", "redis_url", "smtp_url", "mail_from", "jobs_stream", "job_lease_seconds",
    "job_redelivery_seconds", "job_backoff_seconds", "job_backoff_max_seconds",
    "outbox_relay_interval_seconds",
)  # fmt: skip


@contextmanager
def worker_process(settings: Settings) -> Iterator[subprocess.Popen[bytes]]:
    """`shopgraph worker` with the shop's settings, stopped (SIGTERM) after the block."""
    env = {name: value for name, value in os.environ.items() if not name.startswith("SHOPGRAPH_")}
    env.update({f"SHOPGRAPH_{name.upper()}": str(getattr(settings, name)) for name in PASSED})
    env["SHOPGRAPH_LOG_LEVEL"] = "INFO"
    log: IO[bytes] = tempfile.TemporaryFile()  # noqa: SIM115 (closed below)
    process = subprocess.Popen(
        [str(SHOPGRAPH), "worker"], env=env, stdout=subprocess.DEVNULL, stderr=log
    )
    try:
        _wait_started(process, log)
        yield process
    except BaseException:
        log.seek(0)
        print("worker log:", log.read().decode(errors="replace")[-4000:])
        raise
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        log.close()


def _wait_started(process: subprocess.Popen[bytes], log: IO[bytes]) -> None:
    """Wait (at most 30 s) until the worker says it listens; its log if it ended instead."""
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        log.seek(0)
        text = log.read().decode(errors="replace")
        if "worker started" in text:
            return
        if process.poll() is not None:
            raise RuntimeError(f"shopgraph worker exited: {text[-2000:]}")
        time.sleep(0.1)
    raise RuntimeError("shopgraph worker did not start within 30 s")


async def _job(shop: Shop, key: str) -> Any:
    (row,) = await shop.rows("SELECT * FROM job_outbox WHERE key = :k", k=key)
    return row


async def _done(shop: Shop, key: str, *, within: float = 30) -> Any:
    for _ in range(int(within / 0.1)):
        job = await _job(shop, key)
        if job.completed_at is not None:
            return job
        await asyncio.sleep(0.1)
    raise AssertionError(f"job {key} not completed within {within} s: {job}")


def _shop_settings(redis: RedisServer, smtp_url: str, **overrides: Any) -> dict[str, Any]:
    return {
        "redis_url": redis.url,
        "jobs_in_process": False,  # the server writes and relays; the worker runs
        "jobs_stream": f"shopgraph-test:jobs:{uuid.uuid4().hex}",
        "smtp_url": smtp_url,
        "mail_from": f"Shop <no-reply@{MAIL_DOMAIN}>",
        "outbox_relay_interval_seconds": 0.3,
        "job_backoff_seconds": 0.3,
        "job_backoff_max_seconds": 1.0,
        "redis_failover_pause_seconds": 0.2,
        **overrides,
    }


async def test_with_redis_stopped_a_checkout_succeeds_and_mails_once_redis_is_back(
    backend: Backend, tmp_path: Path, redis_server: RedisServer
) -> None:
    async with smtp_server() as smtp:
        settings = _shop_settings(redis_server, smtp.url)
        async with private_shop(backend, tmp_path, "jobs_redis_down", **settings) as shop:
            with worker_process(shop.settings):
                # given a cart, a running worker, and then Redis stopped
                variant = await variant_with_stock(shop, 10)
                buyer = await new_customer(shop)
                await fill_cart(buyer, variant["id"], 1)
                redis_server.kill()

                # when the customer checks out
                payload = await checkout(buyer)

                # then the checkout succeeds, its capture waits in the outbox, and no mail goes
                assert payload["userErrors"] == []
                assert payload["order"]["status"] == "PENDING_PAYMENT"
                number = payload["order"]["number"]
                pk = await shop.value("SELECT id FROM orders WHERE number = :n", n=number)
                payment = await shop.value("SELECT id FROM payments WHERE order_id = :o", o=pk)
                key, message_id = (
                    f"order-mail:{pk}:confirmation",
                    f"<order.{pk}.confirmation@{MAIL_DOMAIN}>",
                )
                await asyncio.sleep(2)
                capture = await _job(shop, f"capture:{payment}")
                assert capture.relayed_at is None and capture.completed_at is None
                assert smtp.inbox.with_id(message_id) == []
                assert await shop.value("SELECT status FROM orders WHERE id = :o", o=pk) == (
                    "PENDING_PAYMENT"
                )

                # and once Redis is back (empty: no persistence), the mail arrives, once
                redis_server.start()
                mail = await smtp.inbox.wait_for(message_id, within=40)
                assert number in mail["Subject"]
                job = await _done(shop, key)
                assert job.attempts == 1
                assert (await _job(shop, f"capture:{payment}")).attempts == 1
                assert await shop.value("SELECT status FROM orders WHERE id = :o", o=pk) == "PAID"
                await asyncio.sleep(2)
                assert len(smtp.inbox.with_id(message_id)) == 1


async def test_a_worker_killed_mid_job_leaves_it_to_another_and_its_effect_happens_once(
    backend: Backend, tmp_path: Path, redis_server: RedisServer
) -> None:
    async with smtp_server() as smtp:
        settings = _shop_settings(
            redis_server, smtp.url, job_lease_seconds=2.0, job_redelivery_seconds=5.0
        )
        async with private_shop(backend, tmp_path, "jobs_killed", **settings) as shop:
            # given an SMTP server that holds the next delivery open at DATA
            smtp.inbox.hold_next = True
            with worker_process(shop.settings) as first:
                # when an order's confirmation job is in the middle of sending its mail
                variant = await variant_with_stock(shop, 10)
                buyer = await new_customer(shop)
                await fill_cart(buyer, variant["id"], 1)
                payload = await checkout(buyer)
                assert payload["userErrors"] == []
                pk = await shop.value(
                    "SELECT id FROM orders WHERE number = :n", n=payload["order"]["number"]
                )
                key, message_id = (
                    f"order-mail:{pk}:confirmation",
                    f"<order.{pk}.confirmation@{MAIL_DOMAIN}>",
                )
                await asyncio.wait_for(smtp.inbox.holding.wait(), timeout=30)
                job = await _job(shop, key)
                assert job.attempts == 1 and job.locked_until is not None
                relayed = job.relayed_at

                # and its worker is killed there (no acknowledgement, no clean-up)
                first.send_signal(signal.SIGKILL)
                first.wait(timeout=10)
            smtp.inbox.release.set()  # the held delivery ends unaccepted (451)
            assert smtp.inbox.with_id(message_id) == []

            # then another worker gets the unacknowledged job and sends the mail, once
            with worker_process(shop.settings):
                await smtp.inbox.wait_for(message_id, within=40)
                job = await _done(shop, key)
                assert job.attempts == 2
                # the stream gave it again (unacknowledged), not the relay's late resend
                assert job.relayed_at == relayed
                await asyncio.sleep(6)  # past another redelivery time: nothing comes again
                assert len(smtp.inbox.with_id(message_id)) == 1


def test_the_worker_without_redis_says_so_in_one_line(tmp_path: Path) -> None:
    # given no SHOPGRAPH_REDIS_URL
    env = {name: value for name, value in os.environ.items() if not name.startswith("SHOPGRAPH_")}
    env["SHOPGRAPH_DATABASE_URL"] = f"sqlite+aiosqlite:///{tmp_path / 'worker.db'}"

    # when the worker is started
    run = subprocess.run(
        [str(SHOPGRAPH), "worker"], env=env, capture_output=True, text=True, timeout=60
    )

    # then it exits non-zero with one line naming the setting
    assert run.returncode != 0
    assert run.stderr.strip().splitlines() == [
        "error: SHOPGRAPH_REDIS_URL: the worker takes jobs from Redis; without it the server "
        "runs them itself"
    ]


def test_a_redelivery_time_within_the_lease_is_refused() -> None:
    # A redelivered job would find its lease still held by the worker that died.
    with pytest.raises(ValueError, match="SHOPGRAPH_JOB_REDELIVERY_SECONDS"):
        Settings(job_lease_seconds=60, job_redelivery_seconds=60)
