"""Shared value types: money, sort direction."""

from __future__ import annotations

from decimal import Decimal
from enum import Enum

import strawberry

from app.platform.money import to_decimal
from app.schema.cache_hints import PART_OF_PARENT


@strawberry.type(
    description="An amount of money in a currency; never a float.", directives=[PART_OF_PARENT]
)
class Money:
    """An amount with its currency."""

    amount: Decimal = strawberry.field(description="The amount in major units, e.g. 12.50.")
    currency: str = strawberry.field(description="ISO 4217 currency code, e.g. EUR.")

    @classmethod
    def from_minor(cls, minor: int, currency: str) -> Money:
        """Build from integer minor units."""
        return cls(amount=to_decimal(minor, currency), currency=currency)


@strawberry.type(
    description="The lowest and highest price among a product's variants.",
    directives=[PART_OF_PARENT],
)
class MoneyRange:
    """A price range."""

    min: Money = strawberry.field(description="The lowest price.")
    max: Money = strawberry.field(description="The highest price.")


@strawberry.enum(description="Sort order.")
class SortDirection(Enum):
    """Ascending or descending."""

    ASC = strawberry.enum_value("ASC", description="Smallest first (A to Z, oldest, cheapest).")
    DESC = strawberry.enum_value("DESC", description="Largest first (Z to A, newest, dearest).")
