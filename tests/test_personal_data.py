"""Personal data at rest: no plaintext address, phone, email or name in the rows; `keys rotate`.

The shop runs with two data keys, k1 current; rotation moves every sealed value to k2
(`shopgraph keys rotate` with SHOPGRAPH_DATA_KEY_ID=k2), after which a server holding
only k2 still reads everything.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import os
import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from app.platform.crypto import DataCipher
from app.platform.sealed_addresses import SEALED_COLUMNS
from app.services.keys import rotate_keys
from tests.checkout_shop import ERRORS, checkout, fill_cart, new_customer, variant_with_stock
from tests.conftest import Backend, GraphQLClient, serving_app, signed_in_client
from tests.private_shop import Shop, private_shop
from tests.table_snapshot import assert_unchanged

K1 = base64.b64encode(bytes(range(32))).decode()
K2 = base64.b64encode(bytes(range(100, 132))).decode()
K3 = base64.b64encode(bytes(range(200, 232))).decode()
HASH_KEY = bytes(range(32, 64))
KEYS = {
    "data_keys": f"k1:{K1},k2:{K2}",
    "data_key_id": "k1",
    "data_hash_key": base64.b64encode(HASH_KEY).decode(),
}
SHOPGRAPH = Path(sys.executable).parent / "shopgraph"

HOME = {
    "fullName": "Ottilie Brennessel",
    "line1": "Kastanienallee 41",
    "line2": "Seitenflügel links",
    "city": "Wernigerode",
    "postalCode": "38855",
    "country": "DE",
    "phone": "+49 3943 918273",
}
ADDRESS_FIELDS = "id fullName line1 line2 city postalCode country phone"
ADD_ADDRESS = f"""
mutation ($input: AddressInput!) {{ addAddress(input: $input) {{ address {{ {ADDRESS_FIELDS} }} {ERRORS} }} }}
"""
UPDATE_ADDRESS = f"""
mutation ($id: ID!, $input: AddressInput!) {{
  updateAddress(id: $id, input: $input) {{ address {{ {ADDRESS_FIELDS} }} {ERRORS} }}
}}
"""
REMOVE_ADDRESS = f"""
mutation ($id: ID!) {{ removeAddress(id: $id) {{ address {{ id }} {ERRORS} }} }}
"""
MY_BOOK = f"{{ me {{ addresses {{ {ADDRESS_FIELDS} }} }} }}"
ORDER = """
query ($id: ID!) { order(id: $id) {
  number contactEmail shippingAddress { fullName line1 line2 city postalCode country phone }
} }
"""
BY_EMAIL = """
query ($email: String!) { orders(filter: {customerEmail: $email}) { edges { node { number } } } }
"""


@pytest.fixture(scope="module")
async def shop(backend: Backend, tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Shop]:
    """A private shop sealing with k1 (k2 configured too, for the rotation)."""
    async with private_shop(
        backend, tmp_path_factory.mktemp("personal"), "personal", **KEYS
    ) as made:
        yield made


async def buyer_with_order(shop: Shop) -> tuple[GraphQLClient, dict[str, Any], dict[str, Any]]:
    """A customer with HOME in their book and an order shipped there: (caller, address, order)."""
    buyer = await new_customer(shop)
    added = (await buyer.query(ADD_ADDRESS, {"input": HOME}))["addAddress"]
    assert added["userErrors"] == [], added
    variant = await variant_with_stock(shop, 50)
    await fill_cart(buyer, variant["id"], 1)
    placed = await checkout(buyer, address=None, address_id=added["address"]["id"])
    assert placed["userErrors"] == [], placed
    return buyer, added["address"], placed["order"]


async def raw_rows(shop: Shop, user_id: int) -> dict[str, list[Any]]:
    """The user's rows of every table holding personal data, as stored."""
    return {
        "users": await shop.rows("SELECT * FROM users WHERE id = :u", u=user_id),
        "addresses": await shop.rows("SELECT * FROM addresses WHERE user_id = :u", u=user_id),
        "orders": await shop.rows("SELECT * FROM orders WHERE user_id = :u", u=user_id),
    }


def sealed_values(rows: dict[str, list[Any]]) -> list[str]:
    """Every non-null value of a sealed column in the rows."""
    return [
        getattr(row, column)
        for table, table_rows in rows.items()
        for row in table_rows
        for column in SEALED_COLUMNS[table]
        if getattr(row, column) is not None
    ]


async def test_the_database_holds_no_plaintext_address_phone_or_email(shop: Shop) -> None:
    # given a customer with an address (and phone) in their book and an order shipped there
    buyer, address, order = await buyer_with_order(shop)
    email: str = buyer.email  # type: ignore[attr-defined]

    # when the raw rows of their address and order are read
    rows = await raw_rows(shop, buyer.user_id)  # type: ignore[attr-defined]
    raw = " ".join(str(value) for table in rows.values() for row in table for value in row).lower()

    # then no personal field is there in plaintext, and every sealed value names key k1
    assert len(rows["addresses"]) == 1 and len(rows["orders"]) == 1 and len(rows["users"]) == 1
    for name in ("fullName", "line1", "line2", "city", "postalCode", "phone"):
        assert HOME[name].lower() not in raw, name
    assert email.lower() not in raw and email.partition("@")[0] not in raw
    assert "tester" not in raw  # the user's full name ("Customer Tester")
    values = sealed_values(rows)
    # the user's email and name; the book's six fields; the order's six and its contact email
    assert len(values) == 2 + 6 + 7
    assert all(value.startswith("sg1.k1.") for value in values)
    # the email's search hash is HMAC-SHA256 under the hash key, not the email
    expected = hmac.new(HASH_KEY, email.lower().encode(), hashlib.sha256).hexdigest()
    assert rows["orders"][0].email_hash == expected and rows["users"][0].email_hash == expected

    # and the API reads it all back, the staff search by email included
    assert (await buyer.query(MY_BOOK))["me"]["addresses"] == [address]
    read = (await buyer.query(ORDER, {"id": order["id"]}))["order"]
    assert read["contactEmail"] == email
    assert read["shippingAddress"] == {k: v for k, v in HOME.items()}
    found = (await shop.staff.query(BY_EMAIL, {"email": email.upper()}))["orders"]["edges"]
    assert [edge["node"]["number"] for edge in found] == [order["number"]]


async def test_an_updated_address_is_sealed_again_and_a_bad_phone_is_refused(shop: Shop) -> None:
    # given an address in the book
    buyer, address, _ = await buyer_with_order(shop)
    moved = {**HOME, "city": "Blankenburg", "phone": "(03944) 55 66"}

    # when it is updated, then updated with a phone that is none
    updated = await buyer.query(UPDATE_ADDRESS, {"id": address["id"], "input": moved})
    before = await shop.snapshot()
    refused = (
        await buyer.query(
            UPDATE_ADDRESS, {"id": address["id"], "input": {**HOME, "phone": "call me"}}
        )
    )["updateAddress"]

    # then the change reads back and is stored sealed; the bad phone is INVALID, nothing written
    assert updated["updateAddress"]["address"] == {**moved, "id": address["id"]}
    (row,) = (await raw_rows(shop, buyer.user_id))["addresses"]  # type: ignore[attr-defined]
    assert row.city.startswith("sg1.k1.") and "Blankenburg" not in str(tuple(row))
    assert refused["address"] is None
    assert [(e["field"], e["code"]) for e in refused["userErrors"]] == [
        (["input", "phone"], "INVALID")
    ]
    assert_unchanged(before, await shop.snapshot(), "bad phone")


async def test_someone_elses_address_is_refused_and_nothing_changes(shop: Shop) -> None:
    # given another customer's address, and a customer with a cart
    _, theirs, _ = await buyer_with_order(shop)
    intruder = await new_customer(shop)
    variant = await variant_with_stock(shop, 50, offset=1)
    await fill_cart(intruder, variant["id"], 1)
    cases = [
        ("update", UPDATE_ADDRESS, {"id": theirs["id"], "input": HOME}, "updateAddress"),
        ("remove", REMOVE_ADDRESS, {"id": theirs["id"]}, "removeAddress"),
    ]
    for name, document, variables, field in cases:
        before = await shop.snapshot()
        # when the intruder changes it
        payload = (await intruder.query(document, variables))[field]
        # then NOT_FOUND, and no table changed
        assert payload["address"] is None, name
        assert [e["code"] for e in payload["userErrors"]] == ["NOT_FOUND"], name
        assert_unchanged(before, await shop.snapshot(), name)

    # when the intruder checks out to it, then NOT_FOUND and nothing changed either
    before = await shop.snapshot()
    refused = await checkout(intruder, address=None, address_id=theirs["id"])
    assert refused["order"] is None
    assert [e["code"] for e in refused["userErrors"]] == ["NOT_FOUND"]
    assert_unchanged(before, await shop.snapshot(), "checkout")


async def test_shipping_address_and_address_id_together_are_refused(shop: Shop) -> None:
    buyer, address, _ = await buyer_with_order(shop)
    variant = await variant_with_stock(shop, 50, offset=2)
    await fill_cart(buyer, variant["id"], 1)
    before = await shop.snapshot()

    payload = await checkout(buyer, address_id=address["id"])  # and the default shippingAddress

    assert payload["order"] is None
    assert [e["code"] for e in payload["userErrors"]] == ["REQUIRED"]
    assert_unchanged(before, await shop.snapshot(), "both addresses")


SIGNED_IN = "accessToken user { email fullName } userErrors { field code }"
REGISTER = f"mutation ($input: RegisterInput!) {{ register(input: $input) {{ {SIGNED_IN} }} }}"
LOGIN = f"mutation ($input: LoginInput!) {{ login(input: $input) {{ {SIGNED_IN} }} }}"
RENAME = """
mutation ($input: UpdateProfileInput!) { updateProfile(input: $input) { user { fullName } } }
"""


async def test_a_registered_user_is_sealed_and_found_by_email_in_any_case(shop: Shop) -> None:
    # given a customer who registers with a mixed-case email
    email, password = f"Wilma.{os.urandom(4).hex()}@Sealed.Example", "a long enough passphrase 7"
    given = {"email": email, "password": password, "fullName": "Wilhelmine Quastenflosser"}
    made = (await shop.anonymous.query(REGISTER, {"input": given}))["register"]
    assert made["userErrors"] == [] and made["user"]["email"] == email.lower(), made

    # then the users row holds neither the email nor the name, but the email's keyed hash
    (row,) = await shop.rows("SELECT * FROM users WHERE email_hash = :h", h=_hash(email))
    raw = " ".join(str(value) for value in row).lower()
    assert email.lower() not in raw and "wilma" not in raw and "quastenflosser" not in raw
    assert row.email.startswith("sg1.k1.") and row.full_name.startswith("sg1.k1.")

    # and signing in with the email in another case works, a second account with it does not
    upper = {"email": email.upper(), "password": password}
    signed_in = (await shop.anonymous.query(LOGIN, {"input": upper}))["login"]
    assert signed_in["userErrors"] == [] and signed_in["user"]["fullName"] == given["fullName"]
    again = await shop.anonymous.query(REGISTER, {"input": {**given, "email": email.upper()}})
    assert again["register"]["userErrors"] == [
        {"field": ["input", "email"], "code": "ALREADY_EXISTS"}
    ]
    assert len(await shop.rows("SELECT id FROM users WHERE email_hash = :h", h=_hash(email))) == 1

    # and a new name is sealed too, and reads back
    me = GraphQLClient(shop.http, {"Authorization": f"Bearer {signed_in['accessToken']}"})
    renamed = await me.query(RENAME, {"input": {"fullName": "Wilma Q. Brausewind"}})
    assert renamed["updateProfile"]["user"] == {"fullName": "Wilma Q. Brausewind"}
    (row,) = await shop.rows("SELECT full_name FROM users WHERE email_hash = :h", h=_hash(email))
    assert "brausewind" not in row.full_name.lower() and row.full_name.startswith("sg1.k1.")


def _hash(email: str) -> str:
    return hmac.new(HASH_KEY, email.lower().encode(), hashlib.sha256).hexdigest()


def keys_rotate(shop: Shop, *args: str, **settings: str) -> subprocess.CompletedProcess[str]:
    """`shopgraph keys rotate ARGS` against the shop's database, as an operator runs it."""
    env = {name: value for name, value in os.environ.items() if not name.startswith("SHOPGRAPH_")}
    env["SHOPGRAPH_DATABASE_URL"] = shop.settings.database_url
    env["SHOPGRAPH_DATA_HASH_KEY"] = KEYS["data_hash_key"]
    env.update({f"SHOPGRAPH_{name.upper()}": value for name, value in settings.items()})
    return subprocess.run(
        [str(SHOPGRAPH), "keys", "rotate", *args],
        env=env, capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip


async def counts_by_key(shop: Shop) -> dict[str, dict[str, int]]:
    """For each table with sealed columns: rows holding any value of each key id."""
    counts: dict[str, dict[str, int]] = {}
    for table, columns in SEALED_COLUMNS.items():
        rows = await shop.rows(f"SELECT {', '.join(columns)} FROM {table}")
        by_key: dict[str, int] = {}
        for row in rows:
            for kid in {value.split(".")[1] for value in row if value is not None}:
                by_key[kid] = by_key.get(kid, 0) + 1
        counts[table] = by_key
    return counts


async def test_keys_rotate_moves_every_row_to_the_new_key_and_it_still_reads(shop: Shop) -> None:
    # given rows sealed with k1 (this test's, and any other test's of this shop)
    buyer, address, order = await buyer_with_order(shop)
    email: str = buyer.email  # type: ignore[attr-defined]
    held = await counts_by_key(shop)
    to_rotate = {table: keys.get("k1", 0) for table, keys in held.items()}
    assert to_rotate["addresses"] >= 1 and to_rotate["orders"] >= 1

    # when the operator makes k2 current and rotates
    done = keys_rotate(shop, "--batch-size", "2", data_keys=KEYS["data_keys"], data_key_id="k2")
    again = keys_rotate(shop, data_keys=KEYS["data_keys"], data_key_id="k2")

    # then one line per table with its count, every row carries k2, and a rerun has nothing to do
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines() == [
        f"{table}: {count} rows re-encrypted to key id k2" for table, count in to_rotate.items()
    ]
    assert all(set(keys) <= {"k2"} for keys in (await counts_by_key(shop)).values())
    assert to_rotate["users"] >= 1  # the buyer, at least
    assert again.returncode == 0 and again.stdout.splitlines() == [
        "addresses: 0 rows re-encrypted to key id k2",
        "orders: 0 rows re-encrypted to key id k2",
        "users: 0 rows re-encrypted to key id k2",
    ]

    # and a server that holds only k2 (k1 retired) reads everything through the API
    retired = shop.settings.model_copy(
        update={"data_keys": {"k2": shop.settings.data_keys["k2"]}, "data_key_id": "k2"}  # type: ignore[index]
    )
    async with serving_app(retired) as http:
        reader = await signed_in_client(http, retired, role="CUSTOMER", email=email)
        staff = await signed_in_client(http, retired, role="STAFF", email="staff@personal.example")
        assert (await reader.query(MY_BOOK))["me"]["addresses"] == [address]
        read = (await reader.query(ORDER, {"id": order["id"]}))["order"]
        assert read["contactEmail"] == email and read["shippingAddress"]["phone"] == HOME["phone"]
        found = (await staff.query(BY_EMAIL, {"email": email}))["orders"]["edges"]
        assert [edge["node"]["number"] for edge in found] == [order["number"]]
        me = (await reader.query("{ me { email fullName } }"))["me"]
        assert me == {"email": email, "fullName": "Customer Tester"}


async def test_readers_keep_working_while_keys_rotate(shop: Shop) -> None:
    # given several customers with addresses and orders sealed with k1
    buyers = [await buyer_with_order(shop) for _ in range(4)]
    expected = [[address] for _, address, _ in buyers]
    to_k2 = DataCipher(
        {"k1": base64.b64decode(K1), "k2": base64.b64decode(K2)},
        current_key_id="k2",
        hash_key=HASH_KEY,
    )
    rotation = asyncio.create_task(rotate_keys(shop.db, cipher=to_k2, batch_size=1))

    # when customers read their books over and over while the rotation runs (one row a batch)
    reads = 0
    while not rotation.done() or reads == 0:
        books = await asyncio.gather(*(buyer.query(MY_BOOK) for buyer, _, _ in buyers))
        # then every read answers, with the same addresses
        assert [book["me"]["addresses"] for book in books] == expected
        reads += 1
    results = await rotation

    # and every row ended on k2
    assert [r.table for r in results] == ["addresses", "orders", "users"] and all(
        r.left == 0 for r in results
    )
    assert all(set(keys) <= {"k2"} for keys in (await counts_by_key(shop)).values())


@pytest.mark.parametrize(
    ("args", "settings", "says"),
    [
        (["--key-id", "k9"], {}, "key id 'k9' is not in SHOPGRAPH_DATA_KEYS"),
        (["--key-id", "k2"], {}, "key id 'k2' is not SHOPGRAPH_DATA_KEY_ID"),
        (["--batch-size", "0"], {}, "--batch-size"),
        (["--batch-size", "lots"], {}, "--batch-size"),
        ([], {"data_keys": f"k3:{K3}", "data_key_id": "k3"}, "which is not in SHOPGRAPH_DATA_KEYS"),
        ([], {"data_key_id": "k7"}, "SHOPGRAPH_DATA_KEY_ID"),
    ],
)
async def test_keys_rotate_refuses_bad_input_with_one_line_and_changes_nothing(
    shop: Shop, args: list[str], settings: dict[str, str], says: str
) -> None:
    # given sealed rows (so a rotation without their key meets them)
    await buyer_with_order(shop)
    before = await shop.snapshot()

    # when the rotation is asked for badly
    run = keys_rotate(
        shop, *args, **{"data_keys": KEYS["data_keys"], "data_key_id": "k1", **settings}
    )

    # then it exits non-zero with one line saying why, and no row changed
    lines = [line for line in run.stderr.splitlines() if line.strip()]
    assert run.returncode != 0 and len(lines) == 1, run.stderr
    assert lines[0].startswith("error: ") and says in lines[0], lines
    assert K1 not in run.stderr and K3 not in run.stderr
    assert_unchanged(before, await shop.snapshot(), " ".join(args))


def test_every_sealed_column_is_listed_for_rotation() -> None:
    # the rotation's list names every column the models hold sealed values in
    from app.models import Base

    for table, columns in SEALED_COLUMNS.items():
        assert set(columns) <= set(Base.metadata.tables[table].columns.keys()), table
