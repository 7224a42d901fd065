"""Account types: users, addresses, sign-in results, and the inputs and payloads of account mutations."""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Annotated, Any

import strawberry
from sqlalchemy import Row

from app.models import Role
from app.platform.sealed_addresses import SealedAddress
from app.platform.sealed_users import open_email, open_name
from app.schema.cache_hints import PRIVATE
from app.schema.cart import Cart
from app.schema.enums import graphql_enum
from app.schema.errors import UserError
from app.schema.permissions import IsSelfOrStaff
from app.schema.relay import After, Before, First, Last, Node, Paging
from app.schema.scopes import NOT_FOR_PARTNERS, ORDERS

if TYPE_CHECKING:
    from app.schema.orders import OrderConnection

graphql_enum(
    Role,
    name="Role",
    description="What a user may do.",
    values={
        Role.CUSTOMER: "Shops: carts, orders, reviews.",
        Role.STAFF: "Runs the shop: catalog, stock, orders, moderation.",
        Role.ADMIN: "Staff who may also manage staff.",
    },
)


@strawberry.type(
    description="A postal address: an entry of a user's address book, or an order's copy of "
    "its shipping address. Stored encrypted; only its owner (and, in an order, staff) reads it.",
    directives=[PRIVATE],
)
class Address(Node):
    """An address; its personal fields are opened from the sealed row when first read."""

    pk: strawberry.Private[int]
    user_id: strawberry.Private[int]
    sealed: strawberry.Private[SealedAddress]

    @classmethod
    def from_row(cls, row: Row[Any]) -> Address:
        """Build from an `addresses` row (sealed)."""
        return cls(pk=row.id, user_id=row.user_id, sealed=SealedAddress(row, table="addresses"))

    def _field(self, info: strawberry.Info, name: str) -> Any:
        return self.sealed.open(info.context.cipher)[name]

    @strawberry.field(description="Name of the recipient.")
    def full_name(self, info: strawberry.Info) -> str:
        return str(self._field(info, "full_name"))

    @strawberry.field(description="Street and house number.")
    def line1(self, info: strawberry.Info) -> str:
        return str(self._field(info, "line1"))

    @strawberry.field(description="Apartment, floor, company, c/o; null if none.")
    def line2(self, info: strawberry.Info) -> str | None:
        value = self._field(info, "line2")
        return None if value is None else str(value)

    @strawberry.field(description="City or town.")
    def city(self, info: strawberry.Info) -> str:
        return str(self._field(info, "city"))

    @strawberry.field(description="Postal or ZIP code.")
    def postal_code(self, info: strawberry.Info) -> str:
        return str(self._field(info, "postal_code"))

    @strawberry.field(description="Phone number for the carrier; null if none was given.")
    def phone(self, info: strawberry.Info) -> str | None:
        value = self._field(info, "phone")
        return None if value is None else str(value)

    @strawberry.field(description="Two-letter ISO 3166 country code, e.g. DE.")
    def country(self, info: strawberry.Info) -> str:
        return str(self._field(info, "country"))


def _full_name(root: Any, info: strawberry.Info) -> str:
    # A field of its own place in the type (after id), opened from the sealed row.
    return open_name(info.context.cipher, root.sealed_name)


@strawberry.type(
    description="A person with an account: a customer, staff member or admin.", directives=[PRIVATE]
)
class User(Node):
    """A user."""

    pk: strawberry.Private[int]
    # Sealed as stored (app/platform/sealed_users.py), opened when a field is read.
    sealed_email: strawberry.Private[str]
    sealed_name: strawberry.Private[str]
    full_name: str = strawberry.field(resolver=_full_name, description="The user's full name.")
    role: Role = strawberry.field(description="What the user may do.")
    created_at: datetime = strawberry.field(description="When the account was created (UTC).")
    # The caller proved in this request to be this user (signed in, registered, refreshed)
    # though the request carried no token for them: they may see what the user may see.
    is_caller: strawberry.Private[bool] = False

    @classmethod
    def from_row(cls, row: Row[Any], *, is_caller: bool = False) -> User:
        """Build from a `users` row (the password hash is not read)."""
        return cls(
            pk=row.id,
            sealed_email=row.email,
            sealed_name=row.full_name,
            role=Role(row.role),
            created_at=row.created_at,
            is_caller=is_caller,
        )

    @strawberry.field(
        description="Sign-in email, lower-cased. Only the user themself and staff may see it.",
        permission_classes=[IsSelfOrStaff],
    )
    def email(self, info: strawberry.Info) -> str:
        return open_email(info.context.cipher, self.sealed_email)

    @strawberry.field(
        description="The address book, oldest first. Only the user themself and staff may see it.",
        permission_classes=[IsSelfOrStaff],
    )
    async def addresses(self, info: strawberry.Info) -> list[Address]:
        rows = await info.context.loaders.addresses_by_user_id.load(self.pk)
        return [Address.from_row(row) for row in rows]

    @strawberry.field(
        description="The user's cart; null before anything was put in it. Only the user "
        "themself and staff may see it.",
        permission_classes=[IsSelfOrStaff],
        metadata=NOT_FOR_PARTNERS,
    )
    async def cart(self, info: strawberry.Info) -> Cart | None:
        row = await info.context.loaders.cart_by_user_id.load(self.pk)
        return Cart.from_row(row) if row is not None else None

    @strawberry.field(
        description="The user's orders, newest first. Only the user themself and staff may see "
        "them.",
        permission_classes=[IsSelfOrStaff],
        metadata=ORDERS,
    )
    async def orders(
        self,
        info: strawberry.Info,
        first: First = None,
        after: After = None,
        last: Last = None,
        before: Before = None,
    ) -> Annotated[OrderConnection, strawberry.lazy("app.schema.orders")]:
        from app.loaders.orders import ORDER_SORT
        from app.schema.orders import OrderConnection

        page = Paging(first, after, last, before).request(ORDER_SORT, info.context.settings)
        loaders = info.context.loaders
        result = await loaders.order_pages_by_user_id.load((self.pk, page))
        total = await loaders.order_count_by_user_id.load(self.pk)
        return OrderConnection.from_page(result, total_count=total)


@strawberry.type(
    description="The result of signing in, registering or refreshing: tokens and the user."
)
class AuthPayload:
    """Tokens for a session, or why there are none."""

    access_token: str | None = strawberry.field(
        default=None,
        description="Send as `Authorization: Bearer <token>`; short-lived (see expiresIn).",
    )
    refresh_token: str | None = strawberry.field(
        default=None,
        description="Opaque and single-use: trade it for new tokens with `refreshToken`; keep it secret.",
    )
    expires_in: int | None = strawberry.field(
        default=None, description="Seconds until the access token expires."
    )
    user: User | None = strawberry.field(default=None, description="The signed-in user.")
    user_errors: list[UserError] = strawberry.field(
        default_factory=list, description="Why the request failed; empty on success."
    )


@strawberry.type(description="The result of a mutation of the viewer's account.")
class UserPayload:
    """The changed user, or why nothing changed."""

    user: User | None = strawberry.field(default=None, description="The user after the change.")
    user_errors: list[UserError] = strawberry.field(
        default_factory=list, description="Why the change failed; empty on success."
    )


@strawberry.type(description="The result of a mutation of the address book.")
class AddressPayload:
    """The changed address, or why nothing changed."""

    address: Address | None = strawberry.field(
        default=None,
        description="The address after the change (after removal: as it was before).",
    )
    user_errors: list[UserError] = strawberry.field(
        default_factory=list, description="Why the change failed; empty on success."
    )


@strawberry.input(description="What a new customer account needs.")
class RegisterInput:
    """Registration data."""

    email: str = strawberry.field(description="Sign-in email (stored lower-cased, must be unused).")
    password: str = strawberry.field(
        description="At least the configured minimum length (10 by default) and not easy to guess."
    )
    full_name: str = strawberry.field(description="The customer's full name.")


@strawberry.input(description="Credentials to sign in with.")
class LoginInput:
    """Sign-in data."""

    email: str = strawberry.field(description="Sign-in email (any letter case).")
    password: str = strawberry.field(description="The account's password.")
    cart_token: str | None = strawberry.field(
        default=None,
        description="The token of a guest cart to merge into the user's cart: quantities of a "
        "variant in both are summed (capped at the line maximum) and the guest cart is gone. A "
        "token that names no guest cart merges nothing.",
    )


@strawberry.input(description="Changes to the viewer's profile.")
class UpdateProfileInput:
    """Profile data."""

    full_name: str = strawberry.field(description="The new full name.")


@strawberry.input(description="The current password and the one to replace it.")
class ChangePasswordInput:
    """Password change data."""

    current_password: str = strawberry.field(description="The password in use now.")
    new_password: str = strawberry.field(
        description="The new password; the same rules as at registration apply."
    )


@strawberry.input(description="A postal address.")
class AddressInput:
    """Address data."""

    full_name: str = strawberry.field(description="Name of the recipient.")
    line1: str = strawberry.field(description="Street and house number.")
    line2: str | None = strawberry.field(
        default=None, description="Apartment, floor, company, c/o."
    )
    city: str = strawberry.field(description="City or town.")
    postal_code: str = strawberry.field(description="Postal or ZIP code.")
    country: str = strawberry.field(description="Two-letter ISO 3166 country code, e.g. DE.")
    phone: str | None = strawberry.field(
        default=None,
        description="Phone number for the carrier: digits, spaces and + - ( ) / . (at most 32).",
    )
