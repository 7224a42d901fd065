"""The persisted document steps (see app/http/pipeline.py): which text a request runs.

A request names its document in one of three ways: the query text itself; an automatic
persisted query (APQ: `extensions.persistedQuery {version: 1, sha256Hash}`, as Apollo
Client's persisted-queries link sends it); or `documentId: "sha256:<hex>"` (GraphQL
over HTTP, appendix A). `ResolveDocument` turns the last two into the text:

- APQ, hash only: the text from the APQ store, or `PersistedQueryNotFound`
  (extensions.code PERSISTED_QUERY_NOT_FOUND), upon which the client sends hash and
  text together; the text is stored only when the hash is its SHA-256 (otherwise
  PERSISTED_QUERY_HASH_MISMATCH, and nothing is stored).
- A trusted-documents-only caller (every partner; anonymous callers where the setting
  says so) runs only documents registered for it (`shopgraph documents add`), by
  either id: a query of its own is PERSISTED_QUERY_ID_REQUIRED, an id not registered
  for it PERSISTED_QUERY_NOT_IN_LIST. Trusted documents are pinned in the engine's
  document cache at first use: prepared once, never charged a parse again.

The step runs before admission, so that admission charges the text that will run (its
parse when it is not cached). A refusal is answered only after admission has charged
the request (`AnswerUnresolved`, right after admission): a hash costs what a query does.
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable
from dataclasses import replace
from typing import Any, NamedTuple

from app.engine import ErrorCode, PreparedDocument
from app.http.admission import query_bytes
from app.http.errors import RequestError
from app.http.pipeline import Next, RequestState
from app.platform.persisted_queries import PersistedQueryStore, sha256_hex

SHA256_HEX = re.compile(r"^[0-9a-f]{64}$")
DOCUMENT_ID = re.compile(r"^sha256:([0-9a-f]{64})$")
APQ_VERSION = 1
# As Apollo Server answers it: a miss must never be cached, the next request may register.
NOT_FOUND_HEADERS = {"Cache-Control": "private, no-cache, must-revalidate"}


class Policy(NamedTuple):
    """What one caller may run: any document, or only the trusted documents of its owner."""

    trusted_only: bool
    partner_id: int | None  # whose trusted documents: a partner's, or first-party (None)


# (partner id or None for first-party documents, sha256 hex) -> the registered text, or None
FindTrusted = Callable[[int | None, str], Awaitable[str | None]]


def _bad(message: str, code: ErrorCode = ErrorCode.BAD_REQUEST, status: int = 400) -> RequestError:
    return RequestError(status, message, code)


def _apq_hash(extensions: dict[str, Any] | None) -> str | None:
    """The APQ hash of the request's extensions; RequestError when it is malformed."""
    if not extensions or "persistedQuery" not in extensions:
        return None
    persisted = extensions["persistedQuery"]
    if not isinstance(persisted, dict) or persisted.get("version") != APQ_VERSION:
        raise _bad("`extensions.persistedQuery` must be {version: 1, sha256Hash: <64 hex digits>}")
    sha256_hash = persisted.get("sha256Hash")
    if not isinstance(sha256_hash, str) or not SHA256_HEX.match(sha256_hash):
        raise _bad("`extensions.persistedQuery.sha256Hash` must be 64 lower-case hex digits")
    return sha256_hash


def _document_hash(document_id: str | None) -> str | None:
    if document_id is None:
        return None
    found = DOCUMENT_ID.match(document_id)
    if found is None:
        raise _bad("`documentId` must be `sha256:` and 64 lower-case hex digits")
    return found.group(1)


def _not_in_list(sha256_hash: str) -> RequestError:
    return _bad(
        f"No trusted document sha256:{sha256_hash} is registered for this client; "
        "register it with `shopgraph documents add`",
        ErrorCode.PERSISTED_QUERY_NOT_IN_LIST,
        404,
    )


def _mismatch() -> RequestError:
    return _bad(
        "provided sha does not match query: the hash must be the SHA-256 of the query text",
        ErrorCode.PERSISTED_QUERY_HASH_MISMATCH,
    )


class ResolveDocument:
    """Sets the text of the document a request names (APQ or documentId), or its refusal."""

    def __init__(
        self,
        *,
        store: PersistedQueryStore,
        find_trusted: FindTrusted,
        pin: Callable[[str], PreparedDocument],
        policy_for: Callable[[Any], Policy],
        max_query_bytes: int,
    ) -> None:
        self.store = store
        self.find_trusted = find_trusted
        self.pin = pin
        self.policy_for = policy_for
        self.max_query_bytes = max_query_bytes

    async def __call__(self, state: RequestState, call_next: Next) -> None:
        """Put the text on `state.params`, or `unresolved`, and go on either way."""
        params = state.params
        try:
            text = await self._resolve(state)
        except RequestError as refusal:
            state.unresolved = refusal
            # Admission charges what a request costs anyway, not the parse of a refused text.
            state.params = replace(params, query="")
        else:
            if text is not None and text != params.query:
                state.params = replace(params, query=text)
        await call_next(state)

    async def _resolve(self, state: RequestState) -> str | None:
        """The text to run (None: the request's own query, as sent)."""
        params = state.params
        apq = _apq_hash(params.extensions)
        by_id = _document_hash(params.document_id)
        if by_id is not None and params.query:
            raise _bad("Send either `documentId` or `query`, not both")
        if by_id is not None and apq is not None and apq != by_id:
            raise _bad("`documentId` and `extensions.persistedQuery` name different documents")
        sha256_hash = by_id or apq
        policy = self.policy_for(state.context)
        if policy.trusted_only:
            return await self._trusted(policy, sha256_hash, params.query)
        if by_id is not None:
            text = await self.find_trusted(None, by_id)
            if text is not None:
                self.pin(text)
                return text
            text = await self.store.get(by_id)  # an APQ document is named by its hash too
            if text is None:
                raise _not_in_list(by_id)
            return text
        if apq is None:
            return None
        if not params.query:
            text = await self.store.get(apq)
            if text is None:
                raise RequestError(
                    200,
                    "PersistedQueryNotFound",
                    ErrorCode.PERSISTED_QUERY_NOT_FOUND,
                    NOT_FOUND_HEADERS,
                )
            return text
        if query_bytes(params.query) > self.max_query_bytes:
            return None  # admission refuses it for its size (413); it is never stored
        if sha256_hex(params.query) != apq:
            raise _mismatch()
        await self.store.put(apq, params.query)
        return None

    async def _trusted(self, policy: Policy, sha256_hash: str | None, query: str) -> str:
        if sha256_hash is None:
            raise _bad(
                "This client may run only its registered (trusted) documents: send "
                '`documentId: "sha256:<hash>"` or the APQ hash, not a query',
                ErrorCode.PERSISTED_QUERY_ID_REQUIRED,
            )
        text = await self.find_trusted(policy.partner_id, sha256_hash)
        if text is None:
            raise _not_in_list(sha256_hash)
        if query and query != text:
            raise _mismatch()
        self.pin(text)  # prepared once, at first use; never charged a parse again
        return text


class AnswerUnresolved:
    """Right after admission: stops a request whose document could not be resolved."""

    async def __call__(self, state: RequestState, call_next: Next) -> None:
        """Answer `unresolved`, or go on."""
        if state.unresolved is not None:
            state.refusal = state.unresolved
            return
        await call_next(state)


__all__ = ["AnswerUnresolved", "FindTrusted", "Policy", "ResolveDocument"]
