"""README.md's GraphQL examples, run as written against the demo shop that `make run` seeds.

The database is migrated and seeded by the `shopgraph` command itself, as `make run`
does (`shopgraph migrate`, then `shopgraph seed` with its defaults, in the default
development environment), and the app answers over the ASGI transport. The README is
read the way a person reads it:

- every ```graphql block is one example, sent in the order it appears;
- a ```json block right after an example (only a little prose between, no heading) is
  what the README shows with it: the variables, or, when it has `data`, `errors` or
  `extensions`, part of the response it must contain;
- a ```json block with an `Authorization` key is what the reader puts in GraphiQL's
  Headers tab: it is sent with every later example of the same `##` section;
- `<accessToken>`, `<refreshToken>` and `<cartToken>` stand for the newest tokens (a
  cart's `token`) an earlier example returned (the reader pastes them).

An example passes when it answers 200 without errors, every `userErrors` it selects is
empty and every root field answers something (not null, no empty list or page: a slug
that names nothing fails), unless the README shows the response it answers with.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest

from app.main import create_app
from app.services.seed import DEMO_STAFF_EMAIL, DEMO_STAFF_PASSWORD
from tests.conftest import RUN_ID, Backend, _backends, make_backend

README = Path(__file__).resolve().parent.parent / "README.md"
SHOPGRAPH = Path(sys.executable).parent / "shopgraph"
FENCE = re.compile(r"^```(\S*)\s*$")
HEADING = re.compile(r"^(#{1,6}) ")
PLACEHOLDERS = {
    "<accessToken>": "accessToken",
    "<refreshToken>": "refreshToken",
    "<cartToken>": "token",  # Cart.token
}
RESPONSE_KEYS = {"data", "errors", "extensions"}
MAX_PROSE_LINES = 3  # between an example and a block that belongs to it


@dataclass
class Block:
    """A fenced code block of the README."""

    lang: str
    text: str
    start: int  # line of the opening fence (1-based)
    end: int  # line of the closing fence


@dataclass
class Example:
    """One GraphQL example and what the README shows with it."""

    line: int
    section: str
    query: str
    variables: dict[str, Any] | None = None
    expected: dict[str, Any] | None = None
    headers: dict[str, str] | None = None  # still with placeholders


@dataclass
class Readme:
    """The README's blocks and headings, in order."""

    lines: list[str]
    blocks: list[Block] = field(default_factory=list)
    headings: list[tuple[int, int, str]] = field(default_factory=list)  # line, level, title


def parse_readme(text: str) -> Readme:
    """Split markdown into fenced blocks and the headings outside them."""
    readme = Readme(text.splitlines())
    opened: tuple[str, int] | None = None
    body: list[str] = []
    for number, line in enumerate(readme.lines, start=1):
        fence = FENCE.match(line)
        if opened is None:
            if fence:
                opened, body = (fence.group(1), number), []
            elif heading := HEADING.match(line):
                readme.headings.append((number, len(heading.group(1)), line.lstrip("# ").strip()))
        elif fence and not fence.group(1):
            readme.blocks.append(Block(opened[0], "\n".join(body), opened[1], number))
            opened = None
        else:
            body.append(line)
    assert opened is None, f"README.md line {opened[1]}: a code block is never closed"
    return readme


def _belongs_to_previous(readme: Readme, previous: Block, block: Block) -> bool:
    """Whether `block` follows `previous` with only a little prose and no heading between."""
    if any(previous.end < line < block.start for line, _, _ in readme.headings):
        return False
    prose = [line for line in readme.lines[previous.end : block.start - 1] if line.strip()]
    return len(prose) <= MAX_PROSE_LINES


def readme_examples(text: str) -> list[Example]:
    """The README's GraphQL examples with their variables, expected responses and headers."""
    readme = parse_readme(text)
    examples: list[Example] = []
    headers: dict[str, str] | None = None
    section = ""
    headings = iter(readme.headings)
    upcoming = next(headings, None)
    previous: Block | None = None
    for block in readme.blocks:
        while upcoming is not None and upcoming[0] < block.start:
            if upcoming[1] <= 2:  # a new `##` section: GraphiQL's tabs start empty
                section, headers = upcoming[2], None
            upcoming = next(headings, None)
        if block.lang == "graphql":
            examples.append(Example(block.start, section, block.text, headers=headers))
        elif block.lang == "json":
            attached = (
                previous is not None
                and examples
                and previous.start >= examples[-1].line
                and _belongs_to_previous(readme, previous, block)
            )
            try:
                value = json.loads(block.text)
            except ValueError:
                # A fragment (e.g. part of a response in prose) is fine on its own; one
                # shown with an example must be what the reader can paste.
                assert not attached, f"README.md line {block.start}: not valid JSON"
                value = None
            if isinstance(value, dict) and "Authorization" in value:
                headers = value
            elif attached and isinstance(value, dict):
                example = examples[-1]
                if RESPONSE_KEYS & value.keys():
                    assert example.expected is None, f"README.md line {block.start}"
                    example.expected = value
                else:
                    assert example.variables is None, f"README.md line {block.start}"
                    example.variables = value
        previous = block
    return examples


def _substitute(text: str, tokens: dict[str, str], line: int) -> str:
    for placeholder, kind in PLACEHOLDERS.items():
        if placeholder in text:
            assert kind in tokens, f"README.md line {line}: no earlier example returned {kind}"
            text = text.replace(placeholder, tokens[kind])
    return text


def _collect_tokens(value: Any, tokens: dict[str, str]) -> None:
    """Remember the newest accessToken/refreshToken/cart token anywhere in a response's data."""
    if isinstance(value, dict):
        for key, item in value.items():
            if key in PLACEHOLDERS.values() and isinstance(item, str):
                tokens[key] = item
            else:
                _collect_tokens(item, tokens)
    elif isinstance(value, list):
        for item in value:
            _collect_tokens(item, tokens)


def _user_errors(value: Any) -> list[Any]:
    """Every userError in a response's data."""
    if isinstance(value, dict):
        found = list(value.get("userErrors") or [])
        return found + [e for k, v in value.items() if k != "userErrors" for e in _user_errors(v)]
    if isinstance(value, list):
        return [error for item in value for error in _user_errors(item)]
    return []


def _empty_root_fields(data: Any) -> list[str]:
    """Root fields that answered nothing: null, an empty list or a connection with no edges."""
    if not isinstance(data, dict):
        return ["data"]
    return [
        key
        for key, value in data.items()
        if value is None or value == [] or (isinstance(value, dict) and value.get("edges") == [])
    ]


def contains(actual: Any, expected: Any) -> bool:
    """Whether `actual` holds everything `expected` shows (objects may have more keys)."""
    if isinstance(expected, dict):
        return isinstance(actual, dict) and all(
            key in actual and contains(actual[key], value) for key, value in expected.items()
        )
    if isinstance(expected, list):
        return (
            isinstance(actual, list)
            and len(actual) == len(expected)
            and all(contains(a, e) for a, e in zip(actual, expected, strict=True))
        )
    return bool(actual == expected)


def shopgraph_command(workdir: Path, database_url: str, *args: str) -> str:
    """Run `shopgraph ARGS` as `make run` does (default settings but the database); its stdout."""
    env = {name: value for name, value in os.environ.items() if not name.startswith("SHOPGRAPH_")}
    env["SHOPGRAPH_DATABASE_URL"] = database_url
    done = subprocess.run(
        [str(SHOPGRAPH), *args],
        cwd=workdir,
        env=env,
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


@dataclass
class DemoShop:
    """The demo shop's backend and what `shopgraph seed` printed."""

    backend: Backend
    seed_output: str


@pytest.fixture(scope="module", params=_backends())
async def demo_shop(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> DemoShop:
    """A fresh database, migrated and seeded by the `shopgraph` command with its defaults."""
    workdir = tmp_path_factory.mktemp("readme")
    backend = await make_backend(request.param, workdir, "readme")
    shopgraph_command(workdir, backend.database_url, "migrate")
    return DemoShop(backend, shopgraph_command(workdir, backend.database_url, "seed"))


@pytest.fixture(scope="module")
async def demo_client(demo_shop: DemoShop) -> AsyncIterator[httpx.AsyncClient]:
    """The app over the demo shop, with the development defaults of `make run`.

    Only the rate-limit keys are the run's own (Redis outlives test runs); budgets are
    the defaults, so the examples must also fit in one caller's budget.
    """
    settings = demo_shop.backend.settings(
        rate_limit_capacity=1000,
        rate_limit_restore_rate=50.0,
        rate_limit_key_prefix=f"shopgraph-test:{RUN_ID}:readme:",
    )
    app = create_app(settings)
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url="http://shopgraph.test"
        ) as client,
    ):
        yield client


async def _run(
    client: httpx.AsyncClient, example: Example, tokens: dict[str, str], sent: dict[int, Any]
) -> str | None:
    """Send one example; why it failed, or None."""
    headers = {"Accept": "application/graphql-response+json, application/json"}
    if example.headers is not None:
        # Filled in once, when the reader first pastes them (GraphiQL keeps the tab).
        key = id(example.headers)
        if key not in sent:
            sent[key] = json.loads(_substitute(json.dumps(example.headers), tokens, example.line))
        headers.update(sent[key])
    payload: dict[str, Any] = {"query": _substitute(example.query, tokens, example.line)}
    if example.variables is not None:
        payload["variables"] = example.variables
    response = await client.post("/graphql", json=payload, headers=headers)
    body = response.json()
    _collect_tokens(body.get("data"), tokens)
    expected = example.expected or {}
    if "errors" not in expected:
        if response.status_code != 200 or body.get("errors"):
            return f"HTTP {response.status_code}, errors {body.get('errors')}"
        if "data" not in expected and (problems := _user_errors(body.get("data"))):
            return f"userErrors {problems}"
        if "data" not in expected and (empty := _empty_root_fields(body.get("data"))):
            return f"{', '.join(empty)} answered nothing: {json.dumps(body.get('data'))[:300]}"
    if not contains(body, expected):
        return (
            f"answered {json.dumps(body)[:600]}, not what the README shows: {json.dumps(expected)}"
        )
    return None


def test_the_readme_has_examples_of_each_kind() -> None:
    examples = readme_examples(README.read_text(encoding="utf-8"))
    assert len(examples) >= 12, [e.line for e in examples]
    assert any(e.variables for e in examples), "the product page example has its variables"
    assert sum(1 for e in examples if e.headers) >= 4, "auth examples are sent with a token"
    assert any(e.expected and "extensions" in e.expected for e in examples), "costs are checked"
    assert all(e.section for e in examples)


async def test_every_readme_example_runs_as_written(demo_client: httpx.AsyncClient) -> None:
    examples = readme_examples(README.read_text(encoding="utf-8"))
    tokens: dict[str, str] = {}
    sent: dict[int, Any] = {}
    failures = []
    for example in examples:
        problem = await _run(demo_client, example, tokens, sent)
        if problem is not None:
            failures.append(f"README.md line {example.line} ({example.section}): {problem}")
    assert not failures, "\n".join(failures)


def test_the_readme_shows_what_the_demo_seed_prints(demo_shop: DemoShop) -> None:
    readme = README.read_text(encoding="utf-8")
    counts, login = demo_shop.seed_output.strip().splitlines()
    assert login == f"demo staff login: {DEMO_STAFF_EMAIL} / {DEMO_STAFF_PASSWORD}"
    assert login in readme
    # The counts line as the README quotes it, but for the time it took.
    shown = re.search(r"^seeded .* in [0-9.]+s$", readme, re.MULTILINE)
    assert shown is not None
    assert re.sub(r" in [0-9.]+s$", "", shown.group()) == re.sub(r" in [0-9.]+s$", "", counts)
    assert f'email: "{DEMO_STAFF_EMAIL}", password: "{DEMO_STAFF_PASSWORD}"' in readme
