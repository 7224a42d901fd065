"""The per-request registry of loaders: each loader is made on first use and lives one request."""

from __future__ import annotations

from functools import cached_property
from typing import Any

from app.db import Database
from app.loaders.accounts import AddressByIdLoader, AddressesByUserIdLoader, UserByIdLoader
from app.loaders.cached import EntityCache, ReadTags
from app.loaders.carts import CartByTokenLoader, CartByUserIdLoader, CartLinesByCartIdLoader
from app.loaders.catalog import (
    CategoriesByParentIdLoader,
    CategoryByIdLoader,
    CategoryBySlugLoader,
    ImagesByProductIdLoader,
    ProductByIdLoader,
    ProductBySlugLoader,
    ReviewByIdLoader,
    ReviewPagesByProductIdLoader,
    UserNameByIdLoader,
    VariantByIdLoader,
    VariantsByProductIdLoader,
)
from app.loaders.order_listing import OrderListingCountLoader, OrderListingLoader
from app.loaders.orders import (
    OrderByIdLoader,
    OrderCountByUserIdLoader,
    OrderLinesByOrderIdLoader,
    OrderPagesByUserIdLoader,
    PaymentsByOrderIdLoader,
)
from app.loaders.products import ProductCountLoader, ProductPagesLoader


class Loaders:
    """Typed access to every loader; unpublished products are visible only to staff."""

    def __init__(
        self,
        db: Database,
        *,
        include_unpublished: bool = False,
        entity_cache: EntityCache | None = None,
    ) -> None:
        self._db = db
        self._include_unpublished = include_unpublished
        # What every loader of this request returned, by cache tag (the response cache's).
        self.read_tags = ReadTags()
        self._shared: dict[str, Any] = {"entity_cache": entity_cache, "read_tags": self.read_tags}

    @cached_property
    def category_by_id(self) -> CategoryByIdLoader:
        """Categories by id."""
        return CategoryByIdLoader(self._db, **self._shared)

    @cached_property
    def category_by_slug(self) -> CategoryBySlugLoader:
        """Categories by slug."""
        return CategoryBySlugLoader(self._db, **self._shared)

    @cached_property
    def categories_by_parent_id(self) -> CategoriesByParentIdLoader:
        """Child categories by parent id (None: the roots)."""
        return CategoriesByParentIdLoader(self._db, **self._shared)

    @cached_property
    def product_by_id(self) -> ProductByIdLoader:
        """Visible products by id."""
        return ProductByIdLoader(
            self._db, include_unpublished=self._include_unpublished, **self._shared
        )

    @cached_property
    def product_by_slug(self) -> ProductBySlugLoader:
        """Visible products by slug."""
        return ProductBySlugLoader(
            self._db, include_unpublished=self._include_unpublished, **self._shared
        )

    @cached_property
    def product_pages(self) -> ProductPagesLoader:
        """Pages of product listings."""
        return ProductPagesLoader(
            self._db, include_unpublished=self._include_unpublished, **self._shared
        )

    @cached_property
    def product_count(self) -> ProductCountLoader:
        """Sizes of product listings."""
        return ProductCountLoader(
            self._db, include_unpublished=self._include_unpublished, **self._shared
        )

    @cached_property
    def variants_by_product_id(self) -> VariantsByProductIdLoader:
        """Variants of each product."""
        return VariantsByProductIdLoader(self._db, **self._shared)

    @cached_property
    def variant_by_id(self) -> VariantByIdLoader:
        """Variants of visible products by id."""
        return VariantByIdLoader(
            self._db, include_unpublished=self._include_unpublished, **self._shared
        )

    @cached_property
    def images_by_product_id(self) -> ImagesByProductIdLoader:
        """Images of each product."""
        return ImagesByProductIdLoader(self._db, **self._shared)

    @cached_property
    def review_by_id(self) -> ReviewByIdLoader:
        """Reviews of visible products by id."""
        return ReviewByIdLoader(
            self._db, include_unpublished=self._include_unpublished, **self._shared
        )

    @cached_property
    def review_pages_by_product_id(self) -> ReviewPagesByProductIdLoader:
        """Pages of each product's reviews."""
        return ReviewPagesByProductIdLoader(self._db, **self._shared)

    @cached_property
    def user_name_by_id(self) -> UserNameByIdLoader:
        """Public names of users."""
        return UserNameByIdLoader(self._db, **self._shared)

    @cached_property
    def user_by_id(self) -> UserByIdLoader:
        """Users by id (visibility is the caller's to check)."""
        return UserByIdLoader(self._db, **self._shared)

    @cached_property
    def address_by_id(self) -> AddressByIdLoader:
        """Addresses by id (ownership is the caller's to check)."""
        return AddressByIdLoader(self._db, **self._shared)

    @cached_property
    def addresses_by_user_id(self) -> AddressesByUserIdLoader:
        """Each user's address book."""
        return AddressesByUserIdLoader(self._db, **self._shared)

    @cached_property
    def cart_by_token(self) -> CartByTokenLoader:
        """Carts by token (who may see one is the caller's to check)."""
        return CartByTokenLoader(self._db, **self._shared)

    @cached_property
    def cart_by_user_id(self) -> CartByUserIdLoader:
        """Each customer's cart."""
        return CartByUserIdLoader(self._db, **self._shared)

    @cached_property
    def cart_lines_by_cart_id(self) -> CartLinesByCartIdLoader:
        """Each cart's lines, with their variants' prices and stock."""
        return CartLinesByCartIdLoader(self._db, **self._shared)

    @cached_property
    def order_by_id(self) -> OrderByIdLoader:
        """Orders by id (who may see one is the caller's to check)."""
        return OrderByIdLoader(self._db, **self._shared)

    @cached_property
    def order_lines_by_order_id(self) -> OrderLinesByOrderIdLoader:
        """Each order's lines."""
        return OrderLinesByOrderIdLoader(self._db, **self._shared)

    @cached_property
    def payments_by_order_id(self) -> PaymentsByOrderIdLoader:
        """Each order's payments."""
        return PaymentsByOrderIdLoader(self._db, **self._shared)

    @cached_property
    def order_pages_by_user_id(self) -> OrderPagesByUserIdLoader:
        """Pages of each customer's orders, newest first."""
        return OrderPagesByUserIdLoader(self._db, **self._shared)

    @cached_property
    def order_count_by_user_id(self) -> OrderCountByUserIdLoader:
        """How many orders each customer has."""
        return OrderCountByUserIdLoader(self._db, **self._shared)

    @cached_property
    def order_listing(self) -> OrderListingLoader:
        """Pages of the staff order listing."""
        return OrderListingLoader(self._db, **self._shared)

    @cached_property
    def order_listing_count(self) -> OrderListingCountLoader:
        """Sizes of the staff order listing."""
        return OrderListingCountLoader(self._db, **self._shared)
