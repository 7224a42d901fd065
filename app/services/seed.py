"""A deterministic demo catalog: the same seed gives the same shop, and running again adds nothing twice.

Every product is generated from its own index and the seed alone, so `--products
10000` after `--products 200` adds the 9,800 missing products and keeps the rest.
Rows go in with bulk multi-row INSERTs. The seed command's defaults (500 products, seed
42) are what `make run` seeds and what the README's examples run against.

In development the seed also adds a demo staff login with a published, fixed password
(`seed_demo_staff`), so that the staff examples can be tried at once; never in production.
"""

from __future__ import annotations

import asyncio
import random
import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import Any

import argon2
from argon2.exceptions import InvalidHashError, VerificationError
from faker import Faker
from sqlalchemy import insert, select, text
from sqlalchemy.ext.asyncio import AsyncConnection

from app.models import Category, Product, ProductImage, ProductVariant, Review, Role, User
from app.platform.crypto import DataCipher
from app.platform.passwords import owasp_hasher
from app.platform.sealed_users import seal_user

# Published in the README on purpose: a development shop's staff login, never seeded in
# production (the seed command checks the environment).
DEMO_STAFF_EMAIL = "staff@demo.shopgraph.dev"
DEMO_STAFF_PASSWORD = "copper-lantern-staff-7"
DEMO_STAFF_NAME = "Demo Staff"
CUSTOMER_COUNT = 200
EPOCH = datetime(2025, 1, 1, tzinfo=UTC)
BATCH = 1000

# Root categories and their children: (name, price range in minor units, product nouns).
CATALOG: dict[str, dict[str, tuple[int, int, Sequence[str]]]] = {
    "Clothing": {
        "T-Shirts": (1200, 4500, ["T-Shirt", "Tee", "Polo Shirt"]),
        "Jeans": (3900, 12900, ["Slim Jeans", "Straight Jeans", "Relaxed Jeans"]),
        "Jackets": (5900, 29900, ["Rain Jacket", "Denim Jacket", "Puffer Jacket"]),
        "Shoes": (4500, 18900, ["Sneakers", "Loafers", "Boots"]),
    },
    "Electronics": {
        "Phones": (19900, 129900, ["Smartphone", "Phone Case", "Charger"]),
        "Laptops": (49900, 299900, ["Ultrabook", "Laptop", "Laptop Sleeve"]),
        "Headphones": (2900, 44900, ["Earbuds", "Headphones", "Headset"]),
        "Cameras": (9900, 249900, ["Camera", "Lens", "Tripod"]),
    },
    "Home & Kitchen": {
        "Cookware": (1900, 24900, ["Frying Pan", "Saucepan", "Dutch Oven"]),
        "Furniture": (4900, 99900, ["Chair", "Side Table", "Bookshelf"]),
        "Bedding": (1900, 19900, ["Duvet Cover", "Pillow", "Blanket"]),
        "Lighting": (1500, 29900, ["Desk Lamp", "Floor Lamp", "Pendant Light"]),
    },
    "Sports": {
        "Running": (1500, 19900, ["Running Shoes", "Running Shorts", "Water Bottle"]),
        "Cycling": (1900, 149900, ["Helmet", "Bike Light", "Cycling Jersey"]),
        "Camping": (1900, 59900, ["Tent", "Sleeping Bag", "Camping Stove"]),
        "Fitness": (900, 39900, ["Yoga Mat", "Kettlebell", "Resistance Band"]),
    },
    "Books": {
        "Fiction": (899, 2999, ["Novel", "Short Stories", "Thriller"]),
        "Science": (1299, 5999, ["Field Guide", "Textbook", "Popular Science Book"]),
        "Cooking": (1499, 4999, ["Cookbook", "Baking Book", "Recipe Collection"]),
        "Children": (599, 2499, ["Picture Book", "Activity Book", "Bedtime Stories"]),
    },
    "Beauty": {
        "Skincare": (900, 8900, ["Face Cream", "Serum", "Cleanser"]),
        "Makeup": (700, 5900, ["Lipstick", "Mascara", "Foundation"]),
        "Fragrance": (2900, 15900, ["Eau de Parfum", "Eau de Toilette", "Body Mist"]),
        "Hair Care": (600, 4900, ["Shampoo", "Conditioner", "Hair Oil"]),
    },
}
ADJECTIVES = [
    "Classic",
    "Everyday",
    "Premium",
    "Essential",
    "Vintage",
    "Modern",
    "Organic",
    "Lightweight",
    "Deluxe",
    "Compact",
    "Urban",
    "Nordic",
    "Coastal",
    "Heritage",
]
MATERIALS = [
    "Cotton",
    "Linen",
    "Bamboo",
    "Oak",
    "Steel",
    "Leather",
    "Wool",
    "Ceramic",
    "Recycled",
    "Merino",
    "Walnut",
    "Copper",
    "Canvas",
    "Glass",
]
OPTIONS = [
    ("size", ["XS", "S", "M", "L", "XL"]),
    ("colour", ["Black", "White", "Navy", "Olive", "Sand"]),
    ("edition", ["Standard", "Plus", "Pro", "Max", "Mini"]),
]


@dataclass(frozen=True, slots=True)
class SeedReport:
    """What a seed run added."""

    categories: int
    customers: int
    products: int
    variants: int
    images: int
    reviews: int


class DemoStaff(StrEnum):
    """What `seed_demo_staff` found or did."""

    ADDED = "added"
    KEPT = "kept"  # there already, still with the demo password
    CHANGED = "changed"  # there already, its password or role changed since

    def login_line(self) -> str:
        """The line the seed command prints about the demo staff login."""
        if self is DemoStaff.CHANGED:
            return (
                f"demo staff login: {DEMO_STAFF_EMAIL} (changed since it was seeded: "
                "its password or role is no longer the demo one)"
            )
        return f"demo staff login: {DEMO_STAFF_EMAIL} / {DEMO_STAFF_PASSWORD}"


async def seed_demo_staff(connection: AsyncConnection, *, cipher: DataCipher) -> DemoStaff:
    """Add the demo staff user with the demo password if missing; say whether it still works."""
    row = (
        await connection.execute(
            select(User.role, User.password_hash).where(
                User.email_hash == cipher.search_hash(DEMO_STAFF_EMAIL)
            )
        )
    ).one_or_none()
    hasher = owasp_hasher()
    if row is None:
        # Argon2id takes ~50 ms and 19 MiB: off the event loop, as the server hashes.
        password_hash = await asyncio.to_thread(hasher.hash, DEMO_STAFF_PASSWORD)
        await connection.execute(
            insert(User),
            [
                {
                    **seal_user(cipher, email=DEMO_STAFF_EMAIL, full_name=DEMO_STAFF_NAME),
                    "role": Role.STAFF,
                    "password_hash": password_hash,
                }
            ],
        )
        return DemoStaff.ADDED
    if row.role is not Role.STAFF or row.password_hash is None:
        return DemoStaff.CHANGED
    matches = await asyncio.to_thread(_verifies, hasher, row.password_hash)
    return DemoStaff.KEPT if matches else DemoStaff.CHANGED


def _verifies(hasher: argon2.PasswordHasher, password_hash: str) -> bool:
    try:
        return hasher.verify(password_hash, DEMO_STAFF_PASSWORD)
    except (VerificationError, InvalidHashError):  # a mismatch is a VerificationError
        return False


def slugify(text: str) -> str:
    """'Home & Kitchen' -> 'home-kitchen'."""
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")


async def seed_catalog(
    connection: AsyncConnection,
    *,
    products: int,
    random_seed: int,
    currency: str,
    cipher: DataCipher,
) -> SeedReport:
    """Add whatever part of the demo catalog of `products` products is missing."""
    category_count, leaves = await _seed_categories(connection)
    customer_count, customer_ids = await _seed_customers(connection, cipher, random_seed)
    existing = set((await connection.execute(select(Product.slug))).scalars())
    fake = Faker()
    product_rows: list[dict[str, Any]] = []
    children: list[tuple[int, dict[str, Any]]] = []
    for index in range(products):
        rng = random.Random(f"{random_seed}:product:{index}")
        leaf_name, leaf_id, (low, high, nouns) = leaves[index % len(leaves)]
        name = f"{rng.choice(ADJECTIVES)} {rng.choice(MATERIALS)} {rng.choice(nouns)}"
        slug = f"{slugify(name)}-{index + 1}"
        if slug in existing:
            continue
        fake.seed_instance(f"{random_seed}:text:{index}")
        created = EPOCH + timedelta(minutes=rng.randrange(0, 600 * 24 * 60))
        variant_rows = _variants(rng, index, low, high, currency)
        review_rows = _reviews(rng, fake, customer_ids, created)
        ratings = [review["rating"] for review in review_rows]
        prices = [variant["price_minor"] for variant in variant_rows]
        product_rows.append(
            {
                "slug": slug,
                "name": name,
                "description": f"{fake.paragraph(nb_sentences=3)} Part of our {leaf_name.lower()} range.",
                "category_id": leaf_id,
                "is_published": rng.random() > 0.03,
                "currency": currency,
                "price_min_minor": min(prices),
                "price_max_minor": max(prices),
                "rating_count": len(ratings),
                "rating_average": sum(ratings) / len(ratings) if ratings else 0.0,
                "created_at": created,
                "updated_at": created,
            }
        )
        images = [
            {
                "url": f"https://images.shopgraph.example/products/{slug}/{n}.jpg",
                "alt": f"{name}, view {n + 1}",
                "position": n,
            }
            for n in range(rng.randint(1, 4))
        ]
        children.append(
            (
                len(product_rows) - 1,
                {"variants": variant_rows, "images": images, "reviews": review_rows},
            )
        )
    ids: list[int] = []
    for start in range(0, len(product_rows), BATCH):
        result = await connection.execute(
            insert(Product).returning(Product.id, sort_by_parameter_order=True),
            product_rows[start : start + BATCH],
        )
        ids.extend(result.scalars())
    counts = {"variants": 0, "images": 0, "reviews": 0}
    for model, kind in (
        (ProductVariant, "variants"),
        (ProductImage, "images"),
        (Review, "reviews"),
    ):
        rows = [
            {**row, "product_id": ids[position]}
            for position, related in children
            for row in related[kind]
        ]
        for start in range(0, len(rows), BATCH * 5):
            await connection.execute(insert(model), rows[start : start + BATCH * 5])
        counts[kind] = len(rows)
    if product_rows:
        # Fresh statistics after a bulk load: without them the planner scans whole tables.
        await connection.execute(text("ANALYZE"))
    return SeedReport(
        categories=category_count,
        customers=customer_count,
        products=len(product_rows),
        variants=counts["variants"],
        images=counts["images"],
        reviews=counts["reviews"],
    )


def _variants(
    rng: random.Random, index: int, low: int, high: int, currency: str
) -> list[dict[str, Any]]:
    option, values = rng.choice(OPTIONS)
    base = rng.randrange(low, high) // 100 * 100 + 99
    rows = []
    for position, value in enumerate(rng.sample(values, rng.randint(1, 5))):
        rows.append(
            {
                "sku": f"SG-{index + 1:06d}-{position + 1}",
                "name": value,
                "price_minor": base + position * rng.choice([0, 0, 500, 1000]),
                "currency": currency,
                "stock": rng.choice([0, 0, 3, 8, 15, 40, 120]),
                "attributes": {option: value},
                "position": position,
            }
        )
    return rows


def _reviews(
    rng: random.Random, fake: Faker, customer_ids: list[int], created: datetime
) -> list[dict[str, Any]]:
    count = min(rng.randint(0, 20), len(customer_ids))
    rows = []
    for author in rng.sample(customer_ids, count):
        rating = rng.choices([1, 2, 3, 4, 5], weights=[1, 1, 3, 6, 7])[0]
        rows.append(
            {
                "user_id": author,
                "rating": rating,
                "title": fake.sentence(nb_words=rng.randint(3, 7)).rstrip("."),
                "body": fake.paragraph(nb_sentences=rng.randint(1, 4)),
                "created_at": created + timedelta(minutes=rng.randrange(60, 200 * 24 * 60)),
            }
        )
    return rows


async def _seed_categories(
    connection: AsyncConnection,
) -> tuple[int, list[tuple[str, int, tuple[int, int, Sequence[str]]]]]:
    existing = {
        row.slug: row.id for row in await connection.execute(select(Category.slug, Category.id))
    }
    added = 0
    leaves = []
    for root_position, (root_name, subcategories) in enumerate(CATALOG.items()):
        root_slug = slugify(root_name)
        if root_slug not in existing:
            result = await connection.execute(
                insert(Category).returning(Category.id),
                [
                    {
                        "slug": root_slug,
                        "name": root_name,
                        "position": root_position,
                        "description": f"Everything in {root_name.lower()}.",
                    }
                ],
            )
            existing[root_slug] = result.scalar_one()
            added += 1
        for position, (name, spec) in enumerate(subcategories.items()):
            slug = f"{root_slug}-{slugify(name)}"
            if slug not in existing:
                result = await connection.execute(
                    insert(Category).returning(Category.id),
                    [
                        {
                            "slug": slug,
                            "name": name,
                            "position": position,
                            "parent_id": existing[root_slug],
                            "description": None,
                        }
                    ],
                )
                existing[slug] = result.scalar_one()
                added += 1
            leaves.append((name, existing[slug], spec))
    return added, leaves


async def _seed_customers(
    connection: AsyncConnection, cipher: DataCipher, random_seed: int
) -> tuple[int, list[int]]:
    fake = Faker()
    fake.seed_instance(f"{random_seed}:customers")
    wanted = []
    for n in range(CUSTOMER_COUNT):
        first, last = fake.first_name(), fake.last_name()
        email = f"{slugify(first)}.{slugify(last)}.{n + 1}@demo.shopgraph.example"
        wanted.append(
            {**seal_user(cipher, email=email, full_name=f"{first} {last}"), "role": Role.CUSTOMER}
        )
    # Found by the emails' search hashes: the emails themselves are sealed.
    hashes = [row["email_hash"] for row in wanted]
    found = set(
        (
            await connection.execute(select(User.email_hash).where(User.email_hash.in_(hashes)))
        ).scalars()
    )
    missing = [row for row in wanted if row["email_hash"] not in found]
    if missing:
        await connection.execute(insert(User), missing)
    rows = await connection.execute(
        select(User.email_hash, User.id).where(User.email_hash.in_(hashes))
    )
    by_hash = {row.email_hash: row.id for row in rows}
    return len(missing), [by_hash[email_hash] for email_hash in hashes]
