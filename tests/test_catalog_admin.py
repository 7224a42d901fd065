"""Staff manage the catalog over GraphQL; customers and anonymous callers cannot; derived columns follow."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from typing import Any

import pytest

from app.platform.global_ids import to_global_id
from tests.conftest import Backend, GraphQLClient
from tests.private_shop import Shop, private_shop

PAYLOAD_ERRORS = "userErrors { field message code }"
CREATE_CATEGORY = f"""
mutation ($input: CategoryInput!) {{
  createCategory(input: $input) {{ category {{ id slug name parent {{ slug }} }} {PAYLOAD_ERRORS} }}
}}
"""
UPDATE_CATEGORY = f"""
mutation ($id: ID!, $input: CategoryUpdateInput!) {{
  updateCategory(id: $id, input: $input) {{ category {{ id slug parent {{ slug }} }} {PAYLOAD_ERRORS} }}
}}
"""
PRODUCT_FIELDS = """
id slug name description isPublished updatedAt category { slug }
priceRange { min { amount currency } max { amount currency } }
images { url alt position }
variants { sku }
"""
CREATE_PRODUCT = f"""
mutation ($input: ProductCreateInput!) {{
  createProduct(input: $input) {{ product {{ {PRODUCT_FIELDS} }} {PAYLOAD_ERRORS} }}
}}
"""
UPDATE_PRODUCT = f"""
mutation ($id: ID!, $input: ProductUpdateInput!) {{
  updateProduct(id: $id, input: $input) {{ product {{ {PRODUCT_FIELDS} }} {PAYLOAD_ERRORS} }}
}}
"""
ADD_IMAGE = f"""
mutation ($productId: ID!, $input: ProductImageInput!) {{
  addProductImage(productId: $productId, input: $input) {{ product {{ images {{ url alt position }} }} {PAYLOAD_ERRORS} }}
}}
"""
REMOVE_IMAGE = f"""
mutation ($productId: ID!, $position: Int!) {{
  removeProductImage(productId: $productId, position: $position) {{ product {{ images {{ position }} }} {PAYLOAD_ERRORS} }}
}}
"""
VARIANT_FIELDS = "id sku name price { amount currency } stockQuantity inStock attributes"
CREATE_VARIANT = f"""
mutation ($productId: ID!, $input: VariantInput!) {{
  createVariant(productId: $productId, input: $input) {{ variant {{ {VARIANT_FIELDS} }} {PAYLOAD_ERRORS} }}
}}
"""
UPDATE_VARIANT = f"""
mutation ($id: ID!, $input: VariantUpdateInput!) {{
  updateVariant(id: $id, input: $input) {{
    variant {{ {VARIANT_FIELDS} product {{ priceRange {{ min {{ amount }} max {{ amount }} }} }} }}
    {PAYLOAD_ERRORS}
  }}
}}
"""
SET_STOCK = f"""
mutation ($variantId: ID!, $quantity: Int!) {{
  setStock(variantId: $variantId, quantity: $quantity) {{ variant {{ stockQuantity inStock }} {PAYLOAD_ERRORS} }}
}}
"""
ADJUST_STOCK = f"""
mutation ($variantId: ID!, $delta: Int!) {{
  adjustStock(variantId: $variantId, delta: $delta) {{ variant {{ stockQuantity }} {PAYLOAD_ERRORS} }}
}}
"""
DELETE_REVIEW = f"""
mutation ($id: ID!) {{ deleteReview(id: $id) {{ review {{ id }} {PAYLOAD_ERRORS} }} }}
"""
PRODUCT_BY_SLUG = f"query ($slug: String!) {{ product(slug: $slug) {{ {PRODUCT_FIELDS} }} }}"


@pytest.fixture(scope="module")
async def shop(backend: Backend, tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Shop]:
    """A private shop: these tests write to the catalog."""
    async with private_shop(backend, tmp_path_factory.mktemp("admin"), "catalog_admin") as made:
        yield made


def unique(prefix: str) -> str:
    """A slug or SKU no other test uses."""
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


async def mutate(client: GraphQLClient, query: str, variables: dict[str, Any]) -> dict[str, Any]:
    """Run a mutation that must not fail at the GraphQL level; return its payload."""
    data = await client.query(query, variables)
    (payload,) = data.values()
    return payload  # type: ignore[no-any-return]


async def ok(client: GraphQLClient, query: str, variables: dict[str, Any]) -> dict[str, Any]:
    """Run a mutation that must succeed; return its payload."""
    payload = await mutate(client, query, variables)
    assert payload["userErrors"] == [], payload["userErrors"]
    return payload


async def new_product(shop: Shop, *, published: bool = True, **fields: Any) -> dict[str, Any]:
    """A fresh product made by staff."""
    values = {"name": "Test Lamp", "slug": unique("lamp"), "isPublished": published, **fields}
    return (await ok(shop.staff, CREATE_PRODUCT, {"input": values}))["product"]  # type: ignore[no-any-return]


async def new_variant(
    shop: Shop, product_id: str, price: str = "10.00", stock: int = 0
) -> dict[str, Any]:
    """A fresh variant of a product."""
    values = {"sku": unique("SKU"), "name": "Default", "price": price, "stock": stock}
    payload = await ok(shop.staff, CREATE_VARIANT, {"productId": product_id, "input": values})
    return payload["variant"]  # type: ignore[no-any-return]


def pk(global_id: str) -> int:
    """The primary key inside one of our IDs (the tests know the format)."""
    import base64

    padded = global_id + "=" * (-len(global_id) % 4)
    return int(base64.urlsafe_b64decode(padded).decode().split(":")[1])


# --- staff build a product ----------------------------------------------------------------


async def test_staff_build_a_category_product_variants_and_images(shop: Shop) -> None:
    # given a root category and a child
    root = (await ok(shop.staff, CREATE_CATEGORY, {"input": {"name": "Garden Tools"}}))["category"]
    child_slug = unique("spades")
    child = (
        await ok(
            shop.staff,
            CREATE_CATEGORY,
            {"input": {"name": "Spades", "slug": child_slug, "parentId": root["id"]}},
        )
    )["category"]
    assert root["slug"].startswith("garden-tools")
    assert child["parent"] == {"slug": root["slug"]}

    # when staff add a product with two variants, an image and stock
    product = await new_product(shop, categoryId=child["id"], description="Digs well.")
    assert product["priceRange"] is None and product["variants"] == []
    cheap = await new_variant(shop, product["id"], "12.50", stock=3)
    await new_variant(shop, product["id"], "30.00")
    image = await ok(
        shop.staff,
        ADD_IMAGE,
        {"productId": product["id"], "input": {"url": "https://img.example/a.jpg", "alt": "Spade"}},
    )
    stocked = await ok(shop.staff, SET_STOCK, {"variantId": cheap["id"], "quantity": 7})

    # then the public sees it, with the price range of its variants
    seen = (await shop.anonymous.query(PRODUCT_BY_SLUG, {"slug": product["slug"]}))["product"]
    assert seen["category"] == {"slug": child_slug}
    assert seen["priceRange"] == {
        "min": {"amount": "12.50", "currency": "EUR"},
        "max": {"amount": "30.00", "currency": "EUR"},
    }
    assert len(seen["variants"]) == 2
    assert image["product"]["images"] == [
        {"url": "https://img.example/a.jpg", "alt": "Spade", "position": 0}
    ]
    assert stocked["variant"] == {"stockQuantity": 7, "inStock": True}
    row = (
        await shop.rows(
            "SELECT price_min_minor, price_max_minor, category_id FROM products WHERE id = :id",
            id=pk(product["id"]),
        )
    )[0]
    assert tuple(row) == (1250, 3000, pk(child["id"]))
    assert (
        await shop.value("SELECT stock FROM product_variants WHERE sku = :sku", sku=cheap["sku"])
        == 7
    )


async def test_a_new_price_moves_the_price_range(shop: Shop) -> None:
    # given
    product = await new_product(shop)
    first = await new_variant(shop, product["id"], "10.00")
    await new_variant(shop, product["id"], "20.00")

    # when the cheaper variant becomes the dearest
    payload = await ok(shop.staff, UPDATE_VARIANT, {"id": first["id"], "input": {"price": "25.99"}})

    # then
    assert payload["variant"]["price"] == {"amount": "25.99", "currency": "EUR"}
    assert payload["variant"]["product"]["priceRange"] == {
        "min": {"amount": "20.00"},
        "max": {"amount": "25.99"},
    }
    seen = (await shop.anonymous.query(PRODUCT_BY_SLUG, {"slug": product["slug"]}))["product"]
    assert seen["priceRange"]["min"]["amount"] == "20.00"
    assert seen["updatedAt"] > product["updatedAt"]


async def test_variant_name_sku_and_attributes_change(shop: Shop) -> None:
    # given
    product = await new_product(shop)
    variant = await new_variant(shop, product["id"])
    sku = unique("NEW")

    # when
    payload = await ok(
        shop.staff,
        UPDATE_VARIANT,
        {"id": variant["id"], "input": {"sku": sku, "name": "Large", "attributes": {"size": "L"}}},
    )

    # then
    assert (payload["variant"]["sku"], payload["variant"]["name"]) == (sku, "Large")
    assert payload["variant"]["attributes"] == {"size": "L"}
    assert payload["variant"]["price"]["amount"] == "10.00"


async def test_unpublishing_hides_the_product_from_anonymous_but_not_staff(shop: Shop) -> None:
    # given a published product
    product = await new_product(shop)
    assert (await shop.anonymous.query(PRODUCT_BY_SLUG, {"slug": product["slug"]}))["product"]

    # when staff unpublish it
    payload = await ok(
        shop.staff, UPDATE_PRODUCT, {"id": product["id"], "input": {"isPublished": False}}
    )

    # then
    assert payload["product"]["isPublished"] is False
    assert (await shop.anonymous.query(PRODUCT_BY_SLUG, {"slug": product["slug"]}))[
        "product"
    ] is None
    staff_view = (await shop.staff.query(PRODUCT_BY_SLUG, {"slug": product["slug"]}))["product"]
    assert staff_view["isPublished"] is False


async def test_update_product_changes_only_what_is_given(shop: Shop) -> None:
    # given a product in a category
    category = (await ok(shop.staff, CREATE_CATEGORY, {"input": {"name": "Mugs"}}))["category"]
    product = await new_product(shop, categoryId=category["id"], description="Old text")

    # when only the name changes, then the category is removed
    renamed = await ok(
        shop.staff, UPDATE_PRODUCT, {"id": product["id"], "input": {"name": "Big Mug"}}
    )
    moved = await ok(
        shop.staff, UPDATE_PRODUCT, {"id": product["id"], "input": {"categoryId": None}}
    )

    # then
    assert renamed["product"]["name"] == "Big Mug"
    assert renamed["product"]["description"] == "Old text"
    assert renamed["product"]["category"] == {"slug": category["slug"]}
    assert moved["product"]["category"] is None
    assert moved["product"]["name"] == "Big Mug"


async def test_slugs_made_from_names_stay_unique(shop: Shop) -> None:
    # given
    name = f"Copper Kettle {uuid.uuid4().hex[:6]}"

    # when two products get the same name and no slug
    first = (await ok(shop.staff, CREATE_PRODUCT, {"input": {"name": name}}))["product"]
    second = (await ok(shop.staff, CREATE_PRODUCT, {"input": {"name": name}}))["product"]

    # then
    assert first["slug"] == name.lower().replace(" ", "-")
    assert second["slug"] == f"{first['slug']}-2"
    assert first["isPublished"] is False


async def test_images_are_removed_by_position(shop: Shop) -> None:
    # given two images
    product = await new_product(shop)
    for n in range(2):
        await ok(
            shop.staff,
            ADD_IMAGE,
            {"productId": product["id"], "input": {"url": f"http://img.example/{n}.png"}},
        )

    # when
    payload = await ok(shop.staff, REMOVE_IMAGE, {"productId": product["id"], "position": 0})
    missing = await mutate(shop.staff, REMOVE_IMAGE, {"productId": product["id"], "position": 0})

    # then
    assert payload["product"]["images"] == [{"position": 1}]
    assert missing["userErrors"][0]["code"] == "NOT_FOUND"


async def test_a_category_cannot_move_under_its_own_descendant(shop: Shop) -> None:
    # given a root with a child
    root = (await ok(shop.staff, CREATE_CATEGORY, {"input": {"name": "Toys"}}))["category"]
    child = (
        await ok(shop.staff, CREATE_CATEGORY, {"input": {"name": "Kites", "parentId": root["id"]}})
    )["category"]
    before = await shop.snapshot()

    # when
    into_child = await mutate(
        shop.staff, UPDATE_CATEGORY, {"id": root["id"], "input": {"parentId": child["id"]}}
    )
    into_itself = await mutate(
        shop.staff, UPDATE_CATEGORY, {"id": root["id"], "input": {"parentId": root["id"]}}
    )
    to_root = await ok(
        shop.staff, UPDATE_CATEGORY, {"id": child["id"], "input": {"parentId": None}}
    )

    # then
    for payload in (into_child, into_itself):
        assert payload["category"] is None
        assert payload["userErrors"][0]["code"] == "INVALID"
        assert payload["userErrors"][0]["field"] == ["input", "parentId"]
    assert to_root["category"]["parent"] is None
    after = await shop.snapshot()
    changed = [row for row in after["categories"] if row not in before["categories"]]
    assert [row[0] for row in changed] == [pk(child["id"])]


# --- validation as userErrors -------------------------------------------------------------


async def _invalid_cases(shop: Shop) -> list[tuple[str, str, dict[str, Any], str, list[str]]]:
    taken_category = (await ok(shop.staff, CREATE_CATEGORY, {"input": {"name": "Taken"}}))[
        "category"
    ]
    product = await new_product(shop)
    variant = await new_variant(shop, product["id"])
    missing_category = to_global_id("Category", 999_999)
    return [
        ("duplicate category slug", CREATE_CATEGORY, {"input": {"name": "X", "slug": taken_category["slug"]}}, "ALREADY_EXISTS", ["input", "slug"]),
        ("bad category slug", CREATE_CATEGORY, {"input": {"name": "X", "slug": "Not A Slug"}}, "INVALID", ["input", "slug"]),
        ("missing parent", CREATE_CATEGORY, {"input": {"name": "X", "parentId": missing_category}}, "NOT_FOUND", ["input", "parentId"]),
        ("blank name", CREATE_CATEGORY, {"input": {"name": "  "}}, "REQUIRED", ["input", "name"]),
        ("duplicate product slug", CREATE_PRODUCT, {"input": {"name": "X", "slug": product["slug"]}}, "ALREADY_EXISTS", ["input", "slug"]),
        ("duplicate slug on update", UPDATE_PRODUCT, {"id": (await new_product(shop))["id"], "input": {"slug": product["slug"]}}, "ALREADY_EXISTS", ["input", "slug"]),
        ("missing category", CREATE_PRODUCT, {"input": {"name": "X", "categoryId": missing_category}}, "NOT_FOUND", ["input", "categoryId"]),
        ("malformed product id", UPDATE_PRODUCT, {"id": "nope", "input": {"name": "X"}}, "INVALID", ["id"]),
        ("unknown product", UPDATE_PRODUCT, {"id": to_global_id("Product", 999_999), "input": {"name": "X"}}, "NOT_FOUND", ["id"]),
        ("duplicate sku", CREATE_VARIANT, {"productId": product["id"], "input": {"sku": variant["sku"], "name": "X", "price": "1.00"}}, "ALREADY_EXISTS", ["input", "sku"]),
        ("negative price", CREATE_VARIANT, {"productId": product["id"], "input": {"sku": unique("S"), "name": "X", "price": "-1.00"}}, "INVALID", ["input", "price"]),
        ("too precise price", UPDATE_VARIANT, {"id": variant["id"], "input": {"price": "1.001"}}, "INVALID", ["input", "price"]),
        ("attributes not an object", UPDATE_VARIANT, {"id": variant["id"], "input": {"attributes": [1, 2]}}, "INVALID", ["input", "attributes"]),
        ("bad image url", ADD_IMAGE, {"productId": product["id"], "input": {"url": "javascript:alert(1)"}}, "INVALID", ["input", "url"]),
        ("relative image url", ADD_IMAGE, {"productId": product["id"], "input": {"url": "/a.jpg"}}, "INVALID", ["input", "url"]),
        ("negative stock", SET_STOCK, {"variantId": variant["id"], "quantity": -1}, "INVALID", ["quantity"]),
        ("unknown variant", SET_STOCK, {"variantId": to_global_id("ProductVariant", 999_999), "quantity": 1}, "NOT_FOUND", ["variantId"]),
        ("stock below zero", ADJUST_STOCK, {"variantId": variant["id"], "delta": -1}, "OUT_OF_STOCK", ["delta"]),
    ]  # fmt: skip


async def test_bad_input_comes_back_as_user_errors_and_writes_nothing(shop: Shop) -> None:
    cases = await _invalid_cases(shop)
    for name, query, variables, code, field in cases:
        # given
        before = await shop.snapshot()

        # when
        payload = await mutate(shop.staff, query, variables)

        # then
        (error,) = payload["userErrors"]
        assert (error["code"], error["field"]) == (code, field), name
        assert error["message"], name
        assert [value for key, value in payload.items() if key != "userErrors"] == [None], name
        assert await shop.snapshot() == before, name


# --- who may -----------------------------------------------------------------------------


async def _staff_mutations(shop: Shop) -> list[tuple[str, str, dict[str, Any]]]:
    product = await new_product(shop)
    variant = await new_variant(shop, product["id"], stock=5)
    await ok(
        shop.staff,
        ADD_IMAGE,
        {"productId": product["id"], "input": {"url": "https://i.example/x.png"}},
    )
    category = (await ok(shop.staff, CREATE_CATEGORY, {"input": {"name": "Guarded"}}))["category"]
    return [
        ("createCategory", CREATE_CATEGORY, {"input": {"name": "Sneaky"}}),
        ("updateCategory", UPDATE_CATEGORY, {"id": category["id"], "input": {"slug": unique("sneaky")}}),
        ("createProduct", CREATE_PRODUCT, {"input": {"name": "Sneaky", "isPublished": True}}),
        ("updateProduct", UPDATE_PRODUCT, {"id": product["id"], "input": {"isPublished": False}}),
        ("addProductImage", ADD_IMAGE, {"productId": product["id"], "input": {"url": "https://evil.example/x.png"}}),
        ("removeProductImage", REMOVE_IMAGE, {"productId": product["id"], "position": 0}),
        ("createVariant", CREATE_VARIANT, {"productId": product["id"], "input": {"sku": unique("S"), "name": "X", "price": "0.01"}}),
        ("updateVariant", UPDATE_VARIANT, {"id": variant["id"], "input": {"price": "0.01"}}),
        ("setStock", SET_STOCK, {"variantId": variant["id"], "quantity": 0}),
        ("adjustStock", ADJUST_STOCK, {"variantId": variant["id"], "delta": -5}),
    ]  # fmt: skip


@pytest.mark.parametrize(
    ("caller", "code"), [("customer", "FORBIDDEN"), ("anonymous", "UNAUTHENTICATED")]
)
async def test_only_staff_may_manage_the_catalog_and_nothing_is_written(
    shop: Shop, caller: str, code: str
) -> None:
    client: GraphQLClient = getattr(shop, caller)
    for name, query, variables in await _staff_mutations(shop):
        # given
        before = await shop.snapshot()

        # when
        response = await client.post(query, variables)

        # then
        body = response.json()
        assert response.status_code == 200, body
        assert body["data"] is None, name
        assert [error["extensions"]["code"] for error in body["errors"]] == [code], name
        assert body["errors"][0]["path"] == [name]
        assert await shop.snapshot() == before, name


async def test_a_customer_cannot_moderate_reviews_of_others(shop: Shop) -> None:
    # given someone else's review in the seed
    review_id = await shop.value("SELECT id FROM reviews ORDER BY id LIMIT 1")
    before = await shop.snapshot()

    # when
    payload = await mutate(shop.customer, DELETE_REVIEW, {"id": to_global_id("Review", review_id)})

    # then
    assert payload["review"] is None
    assert payload["userErrors"][0]["code"] == "FORBIDDEN"
    assert await shop.snapshot() == before


# --- stock --------------------------------------------------------------------------------


async def test_stock_adjustments_add_and_remove(shop: Shop) -> None:
    # given
    product = await new_product(shop)
    variant = await new_variant(shop, product["id"], stock=2)

    # when
    added = await ok(shop.staff, ADJUST_STOCK, {"variantId": variant["id"], "delta": 5})
    removed = await ok(shop.staff, ADJUST_STOCK, {"variantId": variant["id"], "delta": -7})
    refused = await mutate(shop.staff, ADJUST_STOCK, {"variantId": variant["id"], "delta": -1})

    # then
    assert added["variant"]["stockQuantity"] == 7
    assert removed["variant"]["stockQuantity"] == 0
    assert refused["userErrors"][0]["code"] == "OUT_OF_STOCK"
    assert (
        await shop.value("SELECT stock FROM product_variants WHERE sku = :sku", sku=variant["sku"])
        == 0
    )


async def test_concurrent_adjustments_never_take_stock_below_zero(shop: Shop) -> None:
    # given the last 5 units
    available, attempts = 5, 16
    product = await new_product(shop)
    variant = await new_variant(shop, product["id"], stock=available)

    # when many callers take one unit at the same time
    payloads = await asyncio.gather(
        *(
            mutate(shop.staff, ADJUST_STOCK, {"variantId": variant["id"], "delta": -1})
            for _ in range(attempts)
        )
    )

    # then exactly the available units were taken, and the rest were refused
    succeeded = [payload for payload in payloads if not payload["userErrors"]]
    refused = [payload["userErrors"][0]["code"] for payload in payloads if payload["userErrors"]]
    assert len(succeeded) == available
    assert refused == ["OUT_OF_STOCK"] * (attempts - available)
    assert sorted(payload["variant"]["stockQuantity"] for payload in succeeded) == list(
        range(available)
    )
    assert (
        await shop.value("SELECT stock FROM product_variants WHERE sku = :sku", sku=variant["sku"])
        == 0
    )
