"""Money is stored as integer minor units; the API speaks Decimal amounts."""

from __future__ import annotations

from decimal import Decimal, InvalidOperation

from app.platform.errors import InvalidInput

# ISO 4217 currencies whose minor unit is not 1/100.
_EXPONENTS = {"JPY": 0, "KRW": 0, "ISK": 0, "CLP": 0, "VND": 0, "BHD": 3, "KWD": 3, "JOD": 3}


def exponent(currency: str) -> int:
    """Digits after the decimal point for a currency."""
    return _EXPONENTS.get(currency, 2)


def to_decimal(minor: int, currency: str) -> Decimal:
    """Integer minor units as a Decimal amount with the currency's digits."""
    return Decimal(minor).scaleb(-exponent(currency))


def to_minor(amount: Decimal, currency: str, *, field: str) -> int:
    """A Decimal amount as minor units; InvalidInput if it is negative or too precise."""
    try:
        if not amount.is_finite() or amount < 0:
            raise InvalidInput(f"`{field}` must be a non-negative amount")
        scaled = amount.scaleb(exponent(currency))
        if scaled != scaled.to_integral_value():
            raise InvalidInput(f"`{field}` has more than {exponent(currency)} decimal places")
        if scaled > 2**31 - 1:
            raise InvalidInput(f"`{field}` is too large")
        return int(scaled)
    except InvalidOperation:
        raise InvalidInput(f"`{field}` is not a valid amount") from None
