"""Root account fields: `me`, and registration, sign-in, sessions, profile and address book mutations."""

from __future__ import annotations

from typing import Annotated

import strawberry

from app.context import Context
from app.platform.global_ids import decode_id_of
from app.resolvers.mutations import Payload, mutate, payload_of
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
from app.schema.permissions import IsAuthenticated
from app.services import accounts

RefreshTokenArgument = Annotated[
    str, strawberry.argument(description="The refresh token from the last sign-in or refresh.")
]
AddressId = Annotated[
    strawberry.ID, strawberry.argument(description="Global ID of one of your addresses.")
]


def _signed_in(result: accounts.SignedIn) -> AuthPayload:
    return AuthPayload(
        access_token=result.access_token,
        refresh_token=result.refresh_token,
        expires_in=result.expires_in,
        user=User.from_row(result.user, is_caller=True),
    )


AUTH = Payload(done=_signed_in, failed=lambda errors: AuthPayload(user_errors=errors))
USER = payload_of(UserPayload, "user", User.from_row)
ADDRESS = payload_of(AddressPayload, "address", Address.from_row)
# The address mutations name the address by their top-level `id` argument.
ADDRESS_ID = {"address_id": "id"}


def _address_fields(data: AddressInput) -> accounts.AddressFields:
    return accounts.AddressFields(
        full_name=data.full_name,
        line1=data.line1,
        line2=data.line2,
        city=data.city,
        postal_code=data.postal_code,
        country=data.country,
    )


def _viewer_id(context: Context) -> int:
    user_id = context.viewer.user_id
    assert user_id is not None  # IsAuthenticated ran first
    return user_id


@strawberry.type
class AccountQuery:
    """Account reads."""

    @strawberry.field(description="The signed-in user; null when nobody is signed in.")
    async def me(self, info: strawberry.Info[Context]) -> User | None:
        user_id = info.context.viewer.user_id
        if user_id is None:
            return None
        row = await info.context.loaders.user_by_id.load(user_id)
        return User.from_row(row) if row is not None else None


@strawberry.type
class AccountMutation:
    """Account changes."""

    @strawberry.mutation(description="Create a customer account and sign it in.")
    async def register(
        self,
        info: strawberry.Info[Context],
        input: Annotated[RegisterInput, strawberry.argument(description="The new account.")],
    ) -> AuthPayload:
        context = info.context
        return await mutate(
            AUTH,
            lambda: accounts.register(
                context.db,
                settings=context.settings,
                email=input.email,
                password=input.password,
                full_name=input.full_name,
            ),
        )

    @strawberry.mutation(
        description="Sign in with email and password. Repeated failures are throttled (THROTTLED)."
    )
    async def login(
        self,
        info: strawberry.Info[Context],
        input: Annotated[LoginInput, strawberry.argument(description="The credentials.")],
    ) -> AuthPayload:
        context = info.context
        return await mutate(
            AUTH,
            lambda: accounts.login(
                context.db,
                settings=context.settings,
                rate_limiter=context.rate_limiter,
                email=input.email,
                password=input.password,
                client_ip=context.client_ip,
            ),
        )

    @strawberry.mutation(
        description="Trade a refresh token for new tokens. Each refresh token works once; "
        "presenting a used one again ends its whole session."
    )
    async def refresh_token(
        self, info: strawberry.Info[Context], refresh_token: RefreshTokenArgument
    ) -> AuthPayload:
        context = info.context
        return await mutate(
            AUTH,
            lambda: accounts.refresh(
                context.db, settings=context.settings, refresh_token=refresh_token
            ),
            input_name=None,
        )

    @strawberry.mutation(
        description="End the session a refresh token belongs to (its access tokens stop working). "
        "False when the token names no session."
    )
    async def logout(
        self, info: strawberry.Info[Context], refresh_token: RefreshTokenArgument
    ) -> bool:
        return await accounts.logout(info.context.db, refresh_token=refresh_token)

    @strawberry.mutation(
        description="Change the viewer's profile.", permission_classes=[IsAuthenticated]
    )
    async def update_profile(
        self,
        info: strawberry.Info[Context],
        input: Annotated[UpdateProfileInput, strawberry.argument(description="The changes.")],
    ) -> UserPayload:
        context = info.context
        return await mutate(
            USER,
            lambda: accounts.update_profile(
                context.db, user_id=_viewer_id(context), full_name=input.full_name
            ),
        )

    @strawberry.mutation(
        description="Change the viewer's password; every other session of the account ends.",
        permission_classes=[IsAuthenticated],
    )
    async def change_password(
        self,
        info: strawberry.Info[Context],
        input: Annotated[
            ChangePasswordInput, strawberry.argument(description="Current and new password.")
        ],
    ) -> UserPayload:
        context = info.context
        return await mutate(
            USER,
            lambda: accounts.change_password(
                context.db,
                settings=context.settings,
                rate_limiter=context.rate_limiter,
                user_id=_viewer_id(context),
                session_id=context.viewer.session_id,
                current_password=input.current_password,
                new_password=input.new_password,
                client_ip=context.client_ip,
            ),
        )

    @strawberry.mutation(
        description="Add an address to the viewer's address book.",
        permission_classes=[IsAuthenticated],
    )
    async def add_address(
        self,
        info: strawberry.Info[Context],
        input: Annotated[AddressInput, strawberry.argument(description="The address.")],
    ) -> AddressPayload:
        context = info.context
        return await mutate(
            ADDRESS,
            lambda: accounts.add_address(
                context.db, user_id=_viewer_id(context), address=_address_fields(input)
            ),
        )

    @strawberry.mutation(
        description="Replace the fields of one of the viewer's addresses.",
        permission_classes=[IsAuthenticated],
    )
    async def update_address(
        self,
        info: strawberry.Info[Context],
        id: AddressId,
        input: Annotated[AddressInput, strawberry.argument(description="The new fields.")],
    ) -> AddressPayload:
        context = info.context
        return await mutate(
            ADDRESS,
            lambda: accounts.update_address(
                context.db,
                user_id=_viewer_id(context),
                address_id=decode_id_of(id, "Address", field="address_id"),
                address=_address_fields(input),
            ),
            arguments=ADDRESS_ID,
        )

    @strawberry.mutation(
        description="Remove one of the viewer's addresses.", permission_classes=[IsAuthenticated]
    )
    async def remove_address(self, info: strawberry.Info[Context], id: AddressId) -> AddressPayload:
        context = info.context
        return await mutate(
            ADDRESS,
            lambda: accounts.remove_address(
                context.db,
                user_id=_viewer_id(context),
                address_id=decode_id_of(id, "Address", field="address_id"),
            ),
            arguments=ADDRESS_ID,
        )
