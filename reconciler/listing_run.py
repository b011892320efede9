"""Runs the listing against the account: the Reader's questions asked side by side, known ids looked up."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Iterable, Sequence
from typing import TypeVar

from reconciler.answers import Answer
from reconciler.errors import ApiError
from reconciler.listing import FLAG, UNANSWERED, Listing, Query, Reader, Unprovable
from reconciler.models import RemoteSecret
from reconciler.text import plural

# The listing's own logger: `-v` shows the reading and its proof as one story.
log = logging.getLogger("reconciler.listing")
T = TypeVar("T")

Fetch = Callable[[Query], Awaitable[Answer]]
ReadById = Callable[[str], Awaitable[RemoteSecret | None]]


async def read_account(
    fetch: Fetch,
    read_by_id: ReadById,
    *,
    list_url: str,
    batch: int = 4,
    known_ids: Iterable[str] = (),
    assume_complete: bool = False,
    once: bool = False,
    expect: int = 0,
) -> Listing:
    """Every secret of the account, proven whole; or, with `assume_complete`, what could be read.

    `fetch` asks one list question, `read_by_id` reads one secret (None when it does not exist);
    `known_ids` are the secrets the state knows: one that exists but is not listed disproves the listing.
    `once`: pages are read once; `expect`: how many secrets the account is thought to hold (see Reader).
    """
    reader = Reader(list_url, batch, once=once, expect=expect)
    try:
        step: list[Query] | Listing = reader.start()
        while not isinstance(step, Listing):
            step = reader.feed(await gather([_ask(fetch, query) for query in step]))
        listing = step
        missing = sorted(set(known_ids) - {s.secret_id for s in listing.secrets})
        found, read = await _existing(read_by_id, missing, batch, stop_at_first=not assume_complete)
        if found:
            exist = "exists but was" if len(found) == 1 else "exist but were"
            reason = f"{plural(len(found), 'secret')} that the state knows {exist} not listed"
            raise Unprovable(
                f"{reason} (for example {found[0].secret_id})",
                listing.secrets + tuple(found),
                listing.dialect,
                listing.requests + read,
            )
    except Unprovable as unproven:
        if not assume_complete:
            raise unproven.error() from None
        log.warning("%s; going on because %s was given", unproven.seen_text(), FLAG)
        proof = f"not proven, assumed ({FLAG}): {unproven.reason}"
        listing = Listing(unproven.seen, unproven.dialect, proof, unproven.requests, assumed=True)
    log.info("listed %s", listing.describe())
    return listing


async def _ask(fetch: Fetch, query: Query) -> Answer:
    """The answer to one question; a question asked ahead that fails is UNANSWERED, not the error."""
    if not query.ahead:
        return await fetch(query)
    try:
        return await fetch(query)
    except ApiError as exc:
        # Only the status: the error's own text is written for a listing that failed, which this is not.
        failure = f"HTTP {exc.status}" if exc.status else type(exc).__name__
        log.info("a page asked ahead was not answered (%s); it is asked again if it is needed", failure)
        return UNANSWERED


async def _existing(
    read_by_id: ReadById, ids: Sequence[str], batch: int, *, stop_at_first: bool
) -> tuple[list[RemoteSecret], int]:
    """Those of `ids` that exist, and how many were read."""
    found: list[RemoteSecret] = []
    start = 0
    while start < len(ids) and not (found and stop_at_first):
        read = await gather([read_by_id(i) for i in ids[start : start + batch]])
        found.extend(s for s in read if s is not None)
        start += batch
    return found, min(start, len(ids))


async def gather(work: Sequence[Awaitable[T]]) -> list[T]:
    """Every result in order; the first failure is the answer (not an exception group), the rest are
    cancelled."""
    tasks = [asyncio.ensure_future(w) for w in work]
    try:
        return list(await asyncio.gather(*tasks))
    except BaseException:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        raise
