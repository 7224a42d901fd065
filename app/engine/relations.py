"""Relations: a field resolved for many parents with one loader call.

A relation is declared once as (loader, key, build). Query plans resolve it for every
parent of a level with one `load_many`; graphql-core, which runs what plans do not
cover, calls `resolve_one` per parent. The schema layer attaches a `BatchResolver` to a
field's metadata under `BATCH_RESOLVER`.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable
from dataclasses import dataclass
from typing import Any

BATCH_RESOLVER = "shopgraph.batch_resolver"  # key of a BatchResolver in a field's metadata


@dataclass(frozen=True, slots=True)
class BatchResolver:
    """How to resolve a relation for many parents with one loader call.

    `loader(context)` is the request's DataLoader, `key(parent)` its key (None: no
    load, the value is `build(None)`), and `build(loaded)` turns what the loader gives
    for one key into the field's value.
    """

    loader: Callable[[Any], Any]
    key: Callable[[Any], Hashable | None]
    build: Callable[[Any], Any]

    async def resolve_one(self, parent: Any, context: Any) -> Any:
        """The same value for one parent (what the field's ordinary resolver does)."""
        key = self.key(parent)
        if key is None:
            return self.build(None)
        return self.build(await self.loader(context).load(key))
