"""Permission classes: who may resolve a field or run a mutation (each with an error code)."""

from __future__ import annotations

from typing import Any

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


class CanSeeStock(BasePermission):
    """Allows staff, and partners holding inventory:read (stock levels)."""

    message = "Only staff, and partners with the scope inventory:read, may see stock levels"
    error_extensions = {"code": ErrorCode.FORBIDDEN.value}

    def has_permission(self, source: Any, info: strawberry.Info, **kwargs: Any) -> bool:
        """Whether the viewer is staff or a partner token holding inventory:read."""
        viewer = info.context.viewer
        return bool(viewer.is_staff or Scope.INVENTORY_READ in viewer.scopes)


class CanListOrders(BasePermission):
    """Allows staff, and partners holding orders:read (the order listing)."""

    message = "Only staff, and partners with the scope orders:read, may list orders"
    error_extensions = {"code": ErrorCode.FORBIDDEN.value}

    def has_permission(self, source: Any, info: strawberry.Info, **kwargs: Any) -> bool:
        """Whether the viewer is staff or a partner token holding orders:read."""
        viewer = info.context.viewer
        return bool(viewer.is_staff or Scope.ORDERS_READ in viewer.scopes)


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


# The permission lists fields and mutations declare.
SIGNED_IN: list[type[BasePermission]] = [IsAuthenticated]
STAFF: list[type[BasePermission]] = [IsAuthenticated, IsStaff]
