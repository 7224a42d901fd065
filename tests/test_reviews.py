"""Customers review products: one review each, edited and deleted by the author, moderated by staff."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest

from app.platform.global_ids import to_global_id
from tests.conftest import Backend, GraphQLClient, signed_in_client
from tests.private_shop import Shop, private_shop

ERRORS = "userErrors { field message code }"
REVIEW_FIELDS = "id rating title body author { displayName } product { id }"
CREATE_REVIEW = f"""
mutation ($input: ReviewInput!) {{ createReview(input: $input) {{ review {{ {REVIEW_FIELDS} }} {ERRORS} }} }}
"""
UPDATE_REVIEW = f"""
mutation ($id: ID!, $input: ReviewUpdateInput!) {{
  updateReview(id: $id, input: $input) {{ review {{ {REVIEW_FIELDS} }} {ERRORS} }}
}}
"""
DELETE_REVIEW = f"""
mutation ($id: ID!) {{ deleteReview(id: $id) {{ review {{ id rating }} {ERRORS} }} }}
"""
SUMMARY = "query ($id: ID!) { product(id: $id) { ratingSummary { average count } } }"


@pytest.fixture(scope="module")
async def shop(backend: Backend, tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Shop]:
    """A private shop: these tests write reviews."""
    async with private_shop(backend, tmp_path_factory.mktemp("reviews"), "reviews") as made:
        yield made


@pytest.fixture
async def product(shop: Shop) -> AsyncIterator[dict[str, Any]]:
    """A published product none of the test callers has reviewed; their reviews go after the test."""
    users = [shop.customer, shop.other_customer, shop.staff]
    user_ids = [client.user_id for client in users]  # type: ignore[attr-defined]
    row = (
        await shop.rows(
            "SELECT id, rating_count, rating_average FROM products WHERE is_published"
            " AND NOT EXISTS (SELECT 1 FROM reviews r WHERE r.product_id = products.id"
            f" AND r.user_id IN ({', '.join(str(user_id) for user_id in user_ids)}))"
            " ORDER BY id LIMIT 1"
        )
    )[0]
    yield {"id": to_global_id("Product", row.id), "pk": row.id}
    for user in users:
        for (review_id,) in await shop.rows(
            "SELECT id FROM reviews WHERE product_id = :p AND user_id = :u",
            p=row.id,
            u=user.user_id,  # type: ignore[attr-defined]
        ):
            await shop.staff.query(DELETE_REVIEW, {"id": to_global_id("Review", review_id)})


async def payload_of(
    client: GraphQLClient, query: str, variables: dict[str, Any]
) -> dict[str, Any]:
    """The mutation's payload (the request itself must not fail)."""
    (payload,) = (await client.query(query, variables)).values()
    return payload  # type: ignore[no-any-return]


async def write_review(
    client: GraphQLClient, product_id: str, rating: int = 4, title: str = "Solid"
) -> dict[str, Any]:
    """A review that must be accepted."""
    payload = await payload_of(
        client,
        CREATE_REVIEW,
        {"input": {"productId": product_id, "rating": rating, "title": title, "body": "Works."}},
    )
    assert payload["userErrors"] == [], payload
    return payload["review"]  # type: ignore[no-any-return]


async def assert_summary_matches_reviews(shop: Shop, product: dict[str, Any]) -> dict[str, Any]:
    """The product's stored and served rating summary equal a fresh aggregate of its reviews."""
    count, average = (
        await shop.rows(
            "SELECT COUNT(*), AVG(CAST(rating AS FLOAT)) FROM reviews WHERE product_id = :id",
            id=product["pk"],
        )
    )[0]
    stored = (
        await shop.rows(
            "SELECT rating_count, rating_average FROM products WHERE id = :id", id=product["pk"]
        )
    )[0]
    assert stored.rating_count == count
    assert stored.rating_average == pytest.approx(average or 0.0)
    served = (await shop.anonymous.query(SUMMARY, {"id": product["id"]}))["product"]
    expected_average = round(average, 2) if count else None
    assert served["ratingSummary"] == {"average": expected_average, "count": count}
    return served["ratingSummary"]  # type: ignore[no-any-return]


async def test_a_customer_reviews_a_product_and_the_summary_follows(
    shop: Shop, product: dict[str, Any]
) -> None:
    # given
    before = (await shop.anonymous.query(SUMMARY, {"id": product["id"]}))["product"]

    # when
    review = await write_review(shop.customer, product["id"], rating=5, title="Lovely")

    # then
    assert (review["rating"], review["title"], review["body"]) == (5, "Lovely", "Works.")
    assert review["author"] == {"displayName": "Customer T."}
    assert review["product"] == {"id": product["id"]}
    summary = await assert_summary_matches_reviews(shop, product)
    assert summary["count"] == before["ratingSummary"]["count"] + 1


async def test_one_review_per_customer_and_product(shop: Shop, product: dict[str, Any]) -> None:
    # given
    await write_review(shop.customer, product["id"])
    before = await shop.snapshot()

    # when
    payload = await payload_of(
        shop.customer,
        CREATE_REVIEW,
        {"input": {"productId": product["id"], "rating": 1, "title": "Again", "body": ""}},
    )

    # then
    assert payload["review"] is None
    assert [(e["code"], e["field"]) for e in payload["userErrors"]] == [
        ("ALREADY_EXISTS", ["input", "productId"])
    ]
    assert await shop.snapshot() == before


@pytest.mark.parametrize(
    ("changes", "code", "field"),
    [
        ({"rating": 6}, "INVALID", ["input", "rating"]),
        ({"rating": 0}, "INVALID", ["input", "rating"]),
        ({"title": "   "}, "REQUIRED", ["input", "title"]),
        ({"title": "x" * 201}, "INVALID", ["input", "title"]),
        ({"productId": "garbage"}, "INVALID", ["input", "productId"]),
        ({"productId": to_global_id("Product", 999_999)}, "NOT_FOUND", ["input", "productId"]),
    ],
    ids=["rating-6", "rating-0", "blank-title", "long-title", "bad-id", "unknown-product"],
)
async def test_bad_reviews_are_user_errors_and_write_nothing(
    shop: Shop, product: dict[str, Any], changes: dict[str, Any], code: str, field: list[str]
) -> None:
    # given
    before = await shop.snapshot()
    values = {"productId": product["id"], "rating": 3, "title": "Fine", "body": "", **changes}

    # when
    payload = await payload_of(shop.customer, CREATE_REVIEW, {"input": values})

    # then
    assert payload["review"] is None
    assert [(e["code"], e["field"]) for e in payload["userErrors"]] == [(code, field)]
    assert await shop.snapshot() == before


async def test_unpublished_products_cannot_be_reviewed(shop: Shop) -> None:
    # given
    created = await shop.staff.query(
        'mutation { createProduct(input: {name: "Secret Sofa"}) { product { id isPublished } } }'
    )
    hidden = created["createProduct"]["product"]
    assert hidden["isPublished"] is False
    before = await shop.snapshot()

    # when
    payload = await payload_of(
        shop.customer,
        CREATE_REVIEW,
        {
            "input": {
                "productId": hidden["id"],
                "rating": 3,
                "title": "Sneak peek",
                "body": "",
            }
        },
    )

    # then
    assert payload["userErrors"][0]["code"] == "NOT_FOUND"
    assert await shop.snapshot() == before


async def test_the_author_updates_and_deletes_a_review(shop: Shop, product: dict[str, Any]) -> None:
    # given
    review = await write_review(shop.customer, product["id"], rating=2)

    # when the author changes it
    updated = await payload_of(
        shop.customer,
        UPDATE_REVIEW,
        {"id": review["id"], "input": {"rating": 5, "body": "Grew on me."}},
    )

    # then
    assert updated["userErrors"] == []
    assert (updated["review"]["rating"], updated["review"]["title"], updated["review"]["body"]) == (
        5,
        "Solid",
        "Grew on me.",
    )
    await assert_summary_matches_reviews(shop, product)

    # when the author deletes it
    deleted = await payload_of(shop.customer, DELETE_REVIEW, {"id": review["id"]})

    # then
    assert deleted == {"review": {"id": review["id"], "rating": 5}, "userErrors": []}
    assert (
        await shop.value("SELECT COUNT(*) FROM reviews WHERE id = :id", id=_pk(review["id"])) == 0
    )
    await assert_summary_matches_reviews(shop, product)


async def test_another_customer_can_neither_change_nor_delete_a_review(
    shop: Shop, product: dict[str, Any]
) -> None:
    # given
    review = await write_review(shop.customer, product["id"])
    before = await shop.snapshot()

    # when
    updated = await payload_of(
        shop.other_customer, UPDATE_REVIEW, {"id": review["id"], "input": {"rating": 1}}
    )
    deleted = await payload_of(shop.other_customer, DELETE_REVIEW, {"id": review["id"]})

    # then
    for payload in (updated, deleted):
        assert payload["review"] is None
        assert [(e["code"], e["field"]) for e in payload["userErrors"]] == [("FORBIDDEN", ["id"])]
    assert await shop.snapshot() == before


async def test_staff_may_delete_any_review_but_not_edit_it(
    shop: Shop, product: dict[str, Any]
) -> None:
    # given
    review = await write_review(shop.customer, product["id"], rating=1)

    # when
    edited = await payload_of(
        shop.staff, UPDATE_REVIEW, {"id": review["id"], "input": {"rating": 5}}
    )
    moderated = await payload_of(shop.staff, DELETE_REVIEW, {"id": review["id"]})

    # then
    assert edited["userErrors"][0]["code"] == "FORBIDDEN"
    assert moderated["userErrors"] == []
    assert moderated["review"]["id"] == review["id"]
    assert (
        await shop.value("SELECT COUNT(*) FROM reviews WHERE id = :id", id=_pk(review["id"])) == 0
    )
    await assert_summary_matches_reviews(shop, product)


async def test_reviews_by_several_customers_average_out(
    shop: Shop, product: dict[str, Any]
) -> None:
    # given a third customer, made for this test
    third = await signed_in_client(
        shop.http, shop.settings, role="CUSTOMER", email="third@reviews.example"
    )

    # when three customers rate it
    for client, rating in ((shop.customer, 5), (shop.other_customer, 4), (third, 1)):
        await write_review(client, product["id"], rating=rating)

    # then
    await assert_summary_matches_reviews(shop, product)
    for (review_id,) in await shop.rows(
        "SELECT id FROM reviews WHERE product_id = :p AND user_id = :u",
        p=product["pk"],
        u=third.user_id,  # type: ignore[attr-defined]
    ):
        await payload_of(shop.staff, DELETE_REVIEW, {"id": to_global_id("Review", review_id)})


async def test_unknown_reviews_are_not_found(shop: Shop) -> None:
    # when
    payload = await payload_of(
        shop.customer, DELETE_REVIEW, {"id": to_global_id("Review", 999_999)}
    )

    # then
    assert [(e["code"], e["field"]) for e in payload["userErrors"]] == [("NOT_FOUND", ["id"])]


@pytest.mark.parametrize(
    ("query", "variables"),
    [
        (CREATE_REVIEW, {"input": {"productId": to_global_id("Product", 1), "rating": 5, "title": "x", "body": ""}}),
        (UPDATE_REVIEW, {"id": to_global_id("Review", 1), "input": {"rating": 1}}),
        (DELETE_REVIEW, {"id": to_global_id("Review", 1)}),
    ],
    ids=["create", "update", "delete"],
)  # fmt: skip
async def test_anonymous_callers_must_sign_in(
    shop: Shop, query: str, variables: dict[str, Any]
) -> None:
    # given
    before = await shop.snapshot()

    # when
    errors = await shop.anonymous.errors(query, variables)

    # then
    assert [error["extensions"]["code"] for error in errors] == ["UNAUTHENTICATED"]
    assert await shop.snapshot() == before


def _pk(global_id: str) -> int:
    import base64

    padded = global_id + "=" * (-len(global_id) % 4)
    return int(base64.urlsafe_b64decode(padded).decode().split(":")[1])
