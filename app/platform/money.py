"""Money is stored as integer minor units; the API speaks Decimal amounts."""

from __future__ import annotations

from decimal import Context, Decimal, Inexact, InvalidOperation, Overflow, Underflow, localcontext

from app.platform.errors import InvalidInput

# ISO 4217 currencies whose minor unit is not 1/100.
_EXPONENTS = {"JPY": 0, "KRW": 0, "ISK": 0, "CLP": 0, "VND": 0, "BHD": 3, "KWD": 3, "JOD": 3}

# Minor units live in 32-bit INTEGER columns.
MAX_MINOR = 2**31 - 1

# Exact arithmetic for every amount that passes the magnitude checks below (at most
# ten integer digits plus the minor digits), with every lossy signal raised, not
# silently rounded: "1E-999999999" must not become 0, nor "1E+999999" an Overflow 500.
_EXACT = Context(prec=64, traps=[InvalidOperation, Inexact, Overflow, Underflow])


def exponent(currency: str) -> int:
    """Digits after the decimal point for a currency."""
    return _EXPONENTS.get(currency, 2)


def to_decimal(minor: int, currency: str) -> Decimal:
    """Integer minor units as a Decimal amount with the currency's digits."""
    return Decimal(minor).scaleb(-exponent(currency))


def to_minor(amount: Decimal, currency: str, *, field: str) -> int:
    """A Decimal amount as minor units; InvalidInput if it is negative, too precise or too large."""
    places = exponent(currency)
    largest = to_decimal(MAX_MINOR, currency)
    if not amount.is_finite():
        raise InvalidInput(f"`{field}` is not a valid amount (got {str(amount)[:20]})")
    if amount.is_zero():
        return 0  # "0E-999999999" and "-0" are zero, whatever their exponent
    if amount < 0:
        raise InvalidInput(f"`{field}` must be a non-negative amount")
    # adjusted() is the exponent of the leading digit: checked before any arithmetic,
    # so no exponent, however extreme, reaches scaleb.
    if amount.adjusted() > largest.adjusted():
        raise InvalidInput(f"`{field}` is too large (at most {largest} {currency})")
    if amount.adjusted() < -places:
        raise InvalidInput(f"`{field}` has more than {places} decimal places for {currency}")
    try:
        with localcontext(_EXACT):
            scaled = amount.scaleb(places)
            minor = int(scaled.to_integral_exact())
    except (Inexact, InvalidOperation):
        raise InvalidInput(
            f"`{field}` has more than {places} decimal places for {currency}"
        ) from None
    if minor > MAX_MINOR:
        raise InvalidInput(f"`{field}` is too large (at most {largest} {currency})")
    return minor
