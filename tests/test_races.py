"""Count limits under concurrency (issue 9, item 9): many concurrent inserts for one owner
never leave more rows than the limit, on either backend."""

from __future__ import annotations

import asyncio
import uuid

import httpx

from app.services.accounts.profile import MAX_ADDRESSES
from app.settings import Settings
from tests.conftest import signed_in_client

CONCURRENT = 60
ADD_ADDRESS = """
mutation ($input: AddressInput!) {
  addAddress(input: $input) { address { id } userErrors { field message code } }
}
"""
HOME = {
    "fullName": "Jane Doe",
    "line1": "Hauptstrasse 1",
    "city": "Berlin",
    "postalCode": "10115",
    "country": "DE",
}


async def test_concurrent_add_address_calls_stop_exactly_at_the_limit(
    app_client: httpx.AsyncClient, settings: Settings
) -> None:
    caller = await signed_in_client(
        app_client, settings, role="CUSTOMER", email=f"race-{uuid.uuid4().hex[:12]}@test.example"
    )

    answers = await asyncio.gather(
        *(
            caller.query(ADD_ADDRESS, {"input": {**HOME, "line1": f"Street {n}"}})
            for n in range(CONCURRENT)
        )
    )

    added = [a["addAddress"] for a in answers if a["addAddress"]["address"] is not None]
    refused = [a["addAddress"] for a in answers if a["addAddress"]["address"] is None]
    assert len(added) == MAX_ADDRESSES
    assert len(refused) == CONCURRENT - MAX_ADDRESSES
    for payload in refused:
        [error] = payload["userErrors"]
        assert f"at most {MAX_ADDRESSES} addresses" in error["message"], error
    stored = await caller.query("{ me { addresses { id } } }")
    assert len(stored["me"]["addresses"]) == MAX_ADDRESSES
