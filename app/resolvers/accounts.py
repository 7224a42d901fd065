"""Root account fields: `me`, and registration, sign-in, sessions, profile and address book mutations."""

from __future__ import annotations

from typing import Annotated, Any

import strawberry
from sqlalchemy import Row

from app.context import Context
from app.resolvers.mutations import Argument, Payload, global_id, mutation, payload_of
from app.schema.accounts import (
    Address,
    AddressInput,
    AddressPayload,
    AuthPayload,
    ChangePasswordInput,
    LoginInput,
    RegisterInput,
    UpdateProfileInput,
    User,
    UserPayload,
)
from app.schema.permissions import SIGNED_IN
from app.schema.scopes import NOT_FOR_PARTNERS
from app.services import accounts

REFRESH_TOKEN_HELP = "The refresh token from the last sign-in or refresh."
RefreshTokenArgument = Annotated[str, strawberry.argument(description=REFRESH_TOKEN_HELP)]
REFRESH_TOKEN = Argument(str, REFRESH_TOKEN_HELP)
THE_ADDRESS = global_id("Address", "Global ID of one of your addresses.", name="id")


def _signed_in(result: accounts.SignedIn) -> AuthPayload:
    return AuthPayload(
        access_token=result.access_token,
        refresh_token=result.refresh_token,
        expires_in=result.expires_in,
        user=User.from_row(result.user, is_caller=True),
    )


AUTH = Payload(
    type=AuthPayload, done=_signed_in, failed=lambda errors: AuthPayload(user_errors=errors)
)
USER = payload_of(UserPayload, "user", User.from_row)
ADDRESS = payload_of(AddressPayload, "address", Address.from_row)


def _address_fields(data: AddressInput) -> accounts.AddressFields:
    return accounts.AddressFields(
        full_name=data.full_name,
        line1=data.line1,
        line2=data.line2,
        city=data.city,
        postal_code=data.postal_code,
        country=data.country,
        phone=data.phone,
    )


def _viewer_id(context: Context) -> int:
    user_id = context.viewer.user_id
    assert user_id is not None  # IsAuthenticated ran first
    return user_id


@strawberry.type
class AccountQuery:
    """Account reads."""

    @strawberry.field(
        description="The signed-in user; null when nobody is signed in.", metadata=NOT_FOR_PARTNERS
    )
    async def me(self, info: strawberry.Info[Context]) -> User | None:
        user_id = info.context.viewer.user_id
        if user_id is None:
            return None
        row = await info.context.loaders.user_by_id.load(user_id)
        return User.from_row(row) if row is not None else None


@strawberry.type
class AccountMutation:
    """Account changes."""

    @mutation(AUTH, input=Argument(RegisterInput, "The new account."), scope=NOT_FOR_PARTNERS)
    async def register(context: Context, *, input: RegisterInput) -> accounts.SignedIn:
        """Create a customer account and sign it in. Registrations from one IP are throttled (THROTTLED)."""
        return await accounts.register(
            context.db,
            settings=context.settings,
            rate_limiter=context.rate_limiter,
            client_ip=context.client_ip,
            email=input.email,
            password=input.password,
            full_name=input.full_name,
        )

    @mutation(AUTH, input=Argument(LoginInput, "The credentials."), scope=NOT_FOR_PARTNERS)
    async def login(context: Context, *, input: LoginInput) -> accounts.SignedIn:
        """Sign in with email and password; with `cartToken`, the guest cart is merged into the customer's. Repeated failures are throttled (THROTTLED)."""
        return await accounts.login(
            context.db,
            settings=context.settings,
            rate_limiter=context.rate_limiter,
            email=input.email,
            password=input.password,
            client_ip=context.client_ip,
            cart_token=input.cart_token,
        )

    @mutation(AUTH, refresh_token=REFRESH_TOKEN, scope=NOT_FOR_PARTNERS)
    async def refresh_token(context: Context, *, refresh_token: str) -> accounts.SignedIn:
        """Trade a refresh token for new tokens. Each refresh token works once; presenting a used one again ends its whole session."""
        return await accounts.refresh(
            context.db, settings=context.settings, refresh_token=refresh_token
        )

    @strawberry.mutation(
        description="End the session a refresh token belongs to (its access tokens stop working). "
        "False when the token names no session.",
        metadata=NOT_FOR_PARTNERS,
    )
    async def logout(
        self, info: strawberry.Info[Context], refresh_token: RefreshTokenArgument
    ) -> bool:
        return await accounts.logout(info.context.db, refresh_token=refresh_token)

    @mutation(
        USER, SIGNED_IN, input=Argument(UpdateProfileInput, "The changes."), scope=NOT_FOR_PARTNERS
    )
    async def update_profile(context: Context, *, input: UpdateProfileInput) -> Row[Any]:
        """Change the viewer's profile."""
        return await accounts.update_profile(
            context.db,
            cipher=context.cipher,
            user_id=_viewer_id(context),
            full_name=input.full_name,
        )

    @mutation(
        USER,
        SIGNED_IN,
        input=Argument(ChangePasswordInput, "Current and new password."),
        scope=NOT_FOR_PARTNERS,
    )
    async def change_password(context: Context, *, input: ChangePasswordInput) -> Row[Any]:
        """Change the viewer's password; every other session of the account ends."""
        return await accounts.change_password(
            context.db,
            settings=context.settings,
            rate_limiter=context.rate_limiter,
            user_id=_viewer_id(context),
            session_id=context.viewer.session_id,
            current_password=input.current_password,
            new_password=input.new_password,
            client_ip=context.client_ip,
        )

    @mutation(
        ADDRESS, SIGNED_IN, input=Argument(AddressInput, "The address."), scope=NOT_FOR_PARTNERS
    )
    async def add_address(context: Context, *, input: AddressInput) -> Row[Any]:
        """Add an address to the viewer's address book."""
        return await accounts.add_address(
            context.db,
            cipher=context.cipher,
            user_id=_viewer_id(context),
            address=_address_fields(input),
        )

    @mutation(
        ADDRESS,
        SIGNED_IN,
        address_id=THE_ADDRESS,
        input=Argument(AddressInput, "The new fields."),
        scope=NOT_FOR_PARTNERS,
    )
    async def update_address(context: Context, *, address_id: int, input: AddressInput) -> Row[Any]:
        """Replace the fields of one of the viewer's addresses."""
        return await accounts.update_address(
            context.db,
            cipher=context.cipher,
            user_id=_viewer_id(context),
            address_id=address_id,
            address=_address_fields(input),
        )

    @mutation(ADDRESS, SIGNED_IN, address_id=THE_ADDRESS, scope=NOT_FOR_PARTNERS)
    async def remove_address(context: Context, *, address_id: int) -> Row[Any]:
        """Remove one of the viewer's addresses."""
        return await accounts.remove_address(
            context.db, user_id=_viewer_id(context), address_id=address_id
        )
