"""Permission classes: who may resolve a field or run a mutation (each with an error code)."""

from __future__ import annotations

from typing import Any, ClassVar

import strawberry
from strawberry.permission import BasePermission

from app.engine.errors import ErrorCode
from app.platform.scopes import Scope


class IsAuthenticated(BasePermission):
    """Allows signed-in users."""

    message = "Sign in to do this"
    error_extensions = {"code": ErrorCode.UNAUTHENTICATED.value}

    def has_permission(self, source: Any, info: strawberry.Info, **kwargs: Any) -> bool:
        """Whether a user is signed in."""
        return bool(info.context.viewer.is_authenticated)


class IsStaff(BasePermission):
    """Allows staff and admins only."""

    message = "Only staff may do this"
    error_extensions = {"code": ErrorCode.FORBIDDEN.value}

    def has_permission(self, source: Any, info: strawberry.Info, **kwargs: Any) -> bool:
        """Whether the viewer is staff."""
        return bool(info.context.viewer.is_staff)


class StaffOrScope(BasePermission):
    """Allows staff, and partner tokens holding `scope` (set by each subclass)."""

    scope: ClassVar[Scope]
    error_extensions = {"code": ErrorCode.FORBIDDEN.value}

    def has_permission(self, source: Any, info: strawberry.Info, **kwargs: Any) -> bool:
        """Whether the viewer is staff or a partner token holding the scope."""
        viewer = info.context.viewer
        return bool(viewer.is_staff or self.scope in viewer.scopes)


class CanSeeStock(StaffOrScope):
    """Allows staff, and partners holding inventory:read (stock levels)."""

    scope = Scope.INVENTORY_READ
    message = "Only staff, and partners with the scope inventory:read, may see stock levels"


class CanListOrders(StaffOrScope):
    """Allows staff, and partners holding orders:read (the order listing)."""

    scope = Scope.ORDERS_READ
    message = "Only staff, and partners with the scope orders:read, may list orders"


class IsSelfOrStaff(BasePermission):
    """On fields of User: allows the user themself and staff (e.g. email, addresses)."""

    message = "Only the user themself or staff may see this"
    error_extensions = {"code": ErrorCode.FORBIDDEN.value}

    def has_permission(self, source: Any, info: strawberry.Info, **kwargs: Any) -> bool:
        """Whether the viewer is staff or the user the source object describes."""
        viewer = info.context.viewer
        if viewer.is_staff or getattr(source, "is_caller", False):
            return True
        return viewer.user_id is not None and getattr(source, "pk", None) == viewer.user_id


class IsOwnerOrStaff(BasePermission):
    """On fields of an order: allows its customer and staff (not partners; e.g. the email)."""

    message = "Only the order's customer or staff may see this"
    error_extensions = {"code": ErrorCode.FORBIDDEN.value}

    def has_permission(self, source: Any, info: strawberry.Info, **kwargs: Any) -> bool:
        """Whether the viewer is staff or the customer of the order the source describes."""
        viewer = info.context.viewer
        if viewer.is_staff:
            return True
        return viewer.user_id is not None and getattr(source, "user_id", None) == viewer.user_id


# The permission lists fields and mutations declare.
SIGNED_IN: list[type[BasePermission]] = [IsAuthenticated]
STAFF: list[type[BasePermission]] = [IsAuthenticated, IsStaff]
