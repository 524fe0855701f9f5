"""The LINE webhook's inbox writes deliveries that arrive together in one statement (infra/db/line.py
`LineWebhookInbox`): each delivery still learns how many of its own events were new, only once they are
committed, and a statement that fails fails every delivery in it and nothing else."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime
from typing import Any

import pytest
from sqlalchemy import event, func, select

from infra.db.line import LineWebhookInbox
from infra.db.tables_line import LineInboxRow

AT = datetime(2026, 12, 4, 9, 0, tzinfo=UTC)


def inbox_row(event_id: str, **overrides: object) -> dict[str, Any]:
    """A delivery's event as the webhook reduces it (infra/line_webhook.py `_reduce`)."""
    return {
        "id": uuid.uuid4(),
        "webhook_event_id": event_id,
        "event_type": "message",
        "line_user_id": None,
        "reply_token": None,
        "payload": {"mode": "active", "message": "sticker"},
        "event_at": AT,
        "received_at": AT,
        "redelivery": False,
        "attempts": 0,
        "next_attempt_at": AT,
        **overrides,
    }


@pytest.fixture
def inserts(container):  # type: ignore[no-untyped-def]
    """How many INSERT statements reach line_inbox while the test runs."""
    seen: list[str] = []

    def count(_conn, _cursor, statement: str, *_: object) -> None:  # type: ignore[no-untyped-def]
        if statement.lstrip().upper().startswith("INSERT INTO LINE_INBOX"):
            seen.append(statement)

    event.listen(container.engine.sync_engine, "before_cursor_execute", count)
    yield seen
    event.remove(container.engine.sync_engine, "before_cursor_execute", count)


async def stored(container) -> int:  # type: ignore[no-untyped-def]
    async with container.engine.connect() as conn:
        return int((await conn.execute(select(func.count()).select_from(LineInboxRow))).scalar_one())


async def test_deliveries_arriving_together_are_one_statement_and_each_counts_its_own(
    container, inserts
) -> None:  # type: ignore[no-untyped-def]
    inbox = LineWebhookInbox(container.engine)
    deliveries = [[inbox_row(f"together-{n}-{k}") for k in range(n % 3 + 1)] for n in range(20)]
    counts = await asyncio.gather(*(inbox.add(d) for d in deliveries))
    assert counts == [len(d) for d in deliveries]
    assert len(inserts) == 1
    assert await stored(container) == sum(counts)
    # Alone, a delivery is still written at once, in a statement of its own.
    assert await inbox.add([inbox_row("alone")]) == 1
    assert len(inserts) == 2


async def test_an_event_sent_twice_at_once_is_stored_once_and_counted_once(container, inserts) -> None:  # type: ignore[no-untyped-def]
    inbox = LineWebhookInbox(container.engine)
    assert await inbox.add([inbox_row("before")]) == 1
    first, again, redelivered = await asyncio.gather(
        inbox.add([inbox_row("twice"), inbox_row("first-only")]),
        inbox.add([inbox_row("twice")]),
        inbox.add([inbox_row("before", redelivery=True)]),
    )
    assert (first, again, redelivered) == (2, 0, 0)
    assert await stored(container) == 3


async def test_a_statement_that_fails_fails_each_delivery_in_it_and_the_next_is_written(
    container, inserts
) -> None:  # type: ignore[no-untyped-def]
    inbox = LineWebhookInbox(container.engine)
    answers = await asyncio.gather(
        inbox.add([inbox_row("good-1")]),
        inbox.add([inbox_row("broken", event_type=None)]),  # NOT NULL: the whole statement is refused
        inbox.add([inbox_row("good-2")]),
        return_exceptions=True,
    )
    assert len(inserts) == 1
    assert all(isinstance(a, Exception) for a in answers), answers
    assert await stored(container) == 0  # all or none: nothing of the failed statement was kept
    assert await inbox.add([inbox_row("good-1")]) == 1  # LINE sends it again: now it is stored


async def test_a_delivery_whose_request_is_cancelled_leaves_the_others_answered(container) -> None:  # type: ignore[no-untyped-def]
    inbox = LineWebhookInbox(container.engine)
    waiting = asyncio.ensure_future(inbox.add([inbox_row("given-up")]))
    others = asyncio.gather(*(inbox.add([inbox_row(f"kept-{n}")]) for n in range(3)))
    await asyncio.sleep(0)  # every delivery is waiting for the writer
    waiting.cancel()
    assert await others == [1, 1, 1]
    with pytest.raises(asyncio.CancelledError):
        await waiting
    # The cancelled delivery's events were in the statement all the same: LINE's retry is then a duplicate.
    assert await stored(container) == 4
    assert await inbox.add([inbox_row("given-up")]) == 0
