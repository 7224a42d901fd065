"""The job broker: taskiq in process memory (embedded mode) or on a Redis stream (production).

What a job is and where it is on its way lives in the database (the outbox, app/db/outbox.py):
the broker only carries "run job N" from the relay to a worker. That keeps the broker
replaceable and nothing lost in it: a message that never arrives, or whose worker died,
is sent again by the relay from the outbox.

On Redis the broker is taskiq-redis's RedisStreamBroker (a consumer group): a message is
acknowledged (XACK) only after its task has run, and one left unacknowledged by a killed
worker is claimed by another worker once it has been idle `idle_timeout`.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import AsyncGenerator, Mapping
from dataclasses import dataclass, field
from typing import Any, cast

import structlog
from redis.asyncio import Redis
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import ResponseError
from redis.exceptions import TimeoutError as RedisTimeoutError
from taskiq import AckableMessage, AcknowledgeType, AsyncBroker, InMemoryBroker
from taskiq.api import run_receiver_task
from taskiq.kicker import AsyncKicker
from taskiq_redis import RedisStreamBroker

from app.settings import Settings

logger = structlog.get_logger("shopgraph.jobs")

# Versioned: a worker of another version never reads messages it does not know.
JOBS_STREAM = "shopgraph:jobs:v1"
JOBS_CONSUMER_GROUP = "shopgraph-workers"
TASK_PREFIX = "shopgraph.v1."


def task_name(job_name: str) -> str:
    """The broker's name of a job's task (`order_mail` -> `shopgraph.v1.order_mail`)."""
    return TASK_PREFIX + job_name


@dataclass(frozen=True, slots=True)
class JobRequest:
    """A job a unit of work asks for: its name, unique key (one job per cause) and arguments."""

    name: str
    key: str
    payload: Mapping[str, Any] = field(default_factory=dict)


class UnknownJob(LookupError):
    """An outbox row names a job this version does not have."""


def backoff_seconds(attempt: int, *, base: float, cap: float) -> float:
    """The wait before try `attempt + 1`: doubling from `base`, at most `cap`, 0-20% jitter."""
    delay = min(cap, base * 2 ** max(0, attempt - 1))
    jitter: float = random.random() / 5  # spreading retries of many jobs; no secret
    return float(delay) * (1 + jitter)


JOBS_STREAM_MAXLEN = 100_000


class ReclaimingStreamBroker(RedisStreamBroker):
    """RedisStreamBroker that also claims idle unacknowledged messages when nothing new comes.

    taskiq-redis 1.2.4 runs its XAUTOCLAIM pass only after a read that returned new
    messages, so the job of a killed worker would wait for unrelated traffic. This
    `listen` is the same loop with the claim pass after every read (pinned version), and
    it makes the consumer group again when a restarted Redis lost it.
    """

    async def startup(self) -> None:
        """Make the consumer group in workers only: a server that just sends leaves Redis as
        it is until its first job (XADD makes the stream; a worker's group reads from 0)."""
        await AsyncBroker.startup(self)
        if self.is_worker_process:
            await self._declare_consumer_group()

    async def listen(self) -> AsyncGenerator[AckableMessage, None]:
        """New messages of the group, then those idle past `idle_timeout` (claimed)."""
        async with Redis(connection_pool=self.connection_pool) as redis:
            while True:
                try:
                    fetched = await redis.xreadgroup(
                        self.consumer_group_name,
                        self.consumer_name,
                        {self.queue_name: ">"},
                        block=self.block,
                        noack=False,
                        count=self.count,
                    )
                except ResponseError as error:
                    if "NOGROUP" not in str(error):
                        raise
                    # Redis came back empty (restarted without persistence): the group is
                    # made again; what was lost with it the outbox relay sends again.
                    await self._declare_consumer_group()
                    continue
                except (RedisConnectionError, RedisTimeoutError, OSError) as error:
                    # Redis is away: wait and ask again (the receiver would spin otherwise).
                    logger.warning("job broker unreachable; retrying", error=str(error))
                    await asyncio.sleep(1.0)
                    continue
                for stream, messages in cast("list[Any]", fetched or []):
                    for message_id, message in messages:
                        yield AckableMessage(
                            data=message[b"data"], ack=self._ack_generator(message_id, stream)
                        )
                claimed: Any = await redis.xautoclaim(
                    name=self.queue_name,
                    groupname=self.consumer_group_name,
                    consumername=self.consumer_name,
                    min_idle_time=self.idle_timeout,
                    count=self.unacknowledged_batch_size,
                )
                for message_id, message in claimed[1]:
                    if message is None:  # deleted from the stream meanwhile
                        continue
                    yield AckableMessage(
                        data=message[b"data"],
                        ack=self._ack_generator(message_id, self.queue_name),
                    )


def build_broker(settings: Settings) -> AsyncBroker:
    """The Redis stream broker when Redis is configured, else the in-process one."""
    if settings.redis_url is None:
        # Tasks run as tasks of this event loop, right when they are kicked.
        return InMemoryBroker(max_async_tasks=settings.job_concurrency)
    return ReclaimingStreamBroker(
        settings.redis_url,
        queue_name=settings.jobs_stream,
        consumer_group_name=JOBS_CONSUMER_GROUP,
        consumer_id="0",  # a group made after the first messages still gets them
        xread_block=1000,
        idle_timeout=round(settings.job_redelivery_seconds * 1000),
        # Acknowledged entries stay in a stream: trim it (approximately) so that Redis does
        # not grow with every job ever run. An entry trimmed before it ran is not lost: the
        # relay sends again every outbox row still not done (app/db/outbox.py).
        maxlen=JOBS_STREAM_MAXLEN,
        max_connection_pool_size=settings.job_concurrency + 4,
        socket_connect_timeout=2.0,
        socket_timeout=10.0,  # above the blocking read's 1 s
        timeout=2.0,  # waiting for a pooled connection
    )


async def send_job(broker: AsyncBroker, *, name: str, job_id: int) -> None:
    """Put "run job `job_id`" on the broker (raises when the broker is unreachable, and
    UnknownJob when no task of that name is registered: no process could run it)."""
    if broker.find_task(task_name(name)) is None:
        raise UnknownJob(f"no job named {name!r}")
    kicker: AsyncKicker[Any, Any] = AsyncKicker(task_name=task_name(name), broker=broker, labels={})
    await kicker.kiq(job_id)


async def run_worker(broker: AsyncBroker, *, concurrency: int) -> None:
    """Receive and run jobs until cancelled; a message is acknowledged after its task ran."""
    await run_receiver_task(
        broker,
        max_async_tasks=concurrency,
        ack_time=AcknowledgeType.WHEN_EXECUTED,
        propagate_exceptions=True,
    )


async def wait_idle(broker: AsyncBroker) -> None:
    """Wait for the in-process broker's running tasks (tests, shutdown); no-op on Redis."""
    if isinstance(broker, InMemoryBroker):
        await broker.wait_all()
    await asyncio.sleep(0)


__all__ = [
    "JOBS_CONSUMER_GROUP",
    "JOBS_STREAM",
    "JobRequest",
    "ReclaimingStreamBroker",
    "UnknownJob",
    "backoff_seconds",
    "build_broker",
    "run_worker",
    "send_job",
    "task_name",
    "wait_idle",
]
