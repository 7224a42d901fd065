"""Partner scopes: the closed list a partner may hold, and what each one opens.

Defined once here (a leaf: schema fields declare them, services check them at
`partners create` and at token grant, the HTTP pipeline compares them per request).
The README's "Partner scopes" table lists the same names and meanings.
"""

from __future__ import annotations

from collections.abc import Hashable, Iterable, Mapping
from enum import StrEnum
from typing import Final


class Scope(StrEnum):
    """A scope a partner may hold and ask for at /oauth/token."""

    CATALOG_READ = "catalog:read"
    INVENTORY_READ = "inventory:read"
    REVIEWS_READ = "reviews:read"
    ORDERS_READ = "orders:read"
    ORDERS_WRITE = "orders:write"


DESCRIPTIONS: Final[dict[Scope, str]] = {
    Scope.CATALOG_READ: "published products, variants (prices, inStock), images, "
    "categories, rating summaries; node/nodes",
    Scope.INVENTORY_READ: "stock levels: ProductVariant.stockQuantity",
    Scope.REVIEWS_READ: "reviews: Product.reviews and every field of Review",
    Scope.ORDERS_READ: "orders, their lines and payments: order(id), orders",
    # Held ahead of partner order changes: no field needs it yet (checkout acts for a person).
    Scope.ORDERS_WRITE: "placing and changing orders (no field yet)",
}

# Declared by fields that act for a signed-in person (sign-in, the account, reviews written,
# staff catalog changes): no partner token may select them, whatever its scopes. It is not
# a Scope, so no partner can be given it.
USERS_ONLY: Final = "users-only"

KNOWN: Final = frozenset(Scope)


def unknown_scopes(scopes: Iterable[str]) -> list[str]:
    """The names in `scopes` that are not on the closed list, in order."""
    return [scope for scope in scopes if scope not in KNOWN]


def known_list() -> str:
    """The closed list as one line, for error messages."""
    return ", ".join(scope.value for scope in Scope)


def outside_parts(missing: Mapping[Hashable, Iterable[str]]) -> list[str]:
    """One phrase per value a partner lacks (by value): the fields declaring it and why."""
    parts = []
    for value in sorted(missing, key=str):
        fields = ", ".join(missing[value])
        if value == USERS_ONLY:
            parts.append(f"{fields}: not open to partner tokens")
        else:
            parts.append(f"{fields}: needs the scope {value}")
    return parts
