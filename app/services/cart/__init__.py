"""Carts: guest carts by token, a customer's cart, their lines, and the merge on sign-in.

Every change is one unit of work that records a `Cart` change event; expected failures
(bad quantity, unknown variant, another customer's cart or line) are DomainErrors raised
before anything is committed.
"""

from app.services.cart.lines import add_to_cart, remove_cart_line, update_cart_line
from app.services.cart.merge import merge_guest_cart
from app.services.cart.rules import CartLimits, may_use

__all__ = [
    "CartLimits",
    "add_to_cart",
    "may_use",
    "merge_guest_cart",
    "remove_cart_line",
    "update_cart_line",
]
