"""How fields declare the partner scope they need: Strawberry field metadata under SCOPE_KEY.

Every root field declares one (tests/test_partner_scopes.py fails on one that does not),
a nested field declares one when it shows data its root's scope does not cover (stock,
reviews). A partner token may run an operation only when it holds every scope the fields
it selects declare; `USERS_ONLY` fields (they act for a signed-in person) are closed to
partner tokens. Users and anonymous callers have no scopes: roles and permission classes
decide for them. The check itself runs before execution (app/http/steps.py, PartnerScopes).
"""

from __future__ import annotations

from typing import Any, Final

from app.platform.scopes import USERS_ONLY, Scope

SCOPE_KEY: Final = "scope"


def needs(scope: Scope) -> dict[str, Any]:
    """Field metadata: partner tokens need `scope` to select this field."""
    return {SCOPE_KEY: scope}


CATALOG: Final = needs(Scope.CATALOG_READ)
INVENTORY: Final = needs(Scope.INVENTORY_READ)
REVIEWS: Final = needs(Scope.REVIEWS_READ)
ORDERS: Final = needs(Scope.ORDERS_READ)
# Field metadata: no partner token may select this field.
NOT_FOR_PARTNERS: Final[dict[str, Any]] = {SCOPE_KEY: USERS_ONLY}
