"""The staff queue's plans at a moderate size (EXPLAIN): a page filtered by one category is one backward range
of that category's own index, whatever lies between the newest case and the category's newest. The timing
at 10 k and 1 M cases is tests/bench/run.py (queue_first_category, queue_deep_category)."""

from __future__ import annotations

import random
from typing import Any

from sqlalchemy import event, text

from domain.actors import Role
from tests.statistics_data import random_cases, seed


async def _page_plan(client, container, supervisor, params: dict[str, str]) -> str:  # type: ignore[no-untyped-def]
    """The plan of the statement that reads the queue page `GET /v1/consultations?params` (the supervisor's)."""
    captured: list[tuple[str, Any]] = []

    def grab(conn, cursor, statement, parameters, context, executemany):  # type: ignore[no-untyped-def]
        if statement.lstrip().upper().startswith("SELECT") and "LIMIT" in statement.upper():
            captured.append((statement, parameters))

    sync_engine = container.engine.sync_engine
    event.listen(sync_engine, "before_cursor_execute", grab)
    try:
        response = await client.get("/v1/consultations", headers=supervisor.headers, params=params)
    finally:
        event.remove(sync_engine, "before_cursor_execute", grab)
    assert response.status_code == 200, response.text
    assert response.json()["items"], "the page should not be empty"
    (statement, parameters), *_ = [c for c in captured if "consultation_category" in c[0]]
    pg = container.engine.dialect.name == "postgresql"
    async with container.engine.connect() as conn:
        if pg:
            await conn.execute(text("ANALYZE"))
        prefix = "EXPLAIN " if pg else "EXPLAIN QUERY PLAN "
        rows = (await conn.exec_driver_sql(prefix + statement, parameters)).all()
    return "\n".join(str(r[0] if pg else r[-1]) for r in rows)


async def test_a_category_page_is_one_range_of_the_category_s_index(client, container, people) -> None:  # type: ignore[no-untyped-def]
    cases = random_cases(3000, 2025, random.Random(12), owners=1000)
    # The newest 1,000 cases are of other categories than the one filtered: before migration 0032 the first
    # page walked past all of them, probing each for the category.
    newest = sorted(x.created_at for x in cases)[-1000]
    for c in cases:
        if c.created_at >= newest and "RIGHTS.PRIVACY_ID" in c.categories:
            c.categories = [code for code in c.categories if code != "RIGHTS.PRIVACY_ID"] or [
                "YOUTH.BULLYING"
            ]
    await seed(container, cases)
    supervisor = await people.create(Role.supervisor)
    first = await _page_plan(client, container, supervisor, {"category": "RIGHTS.PRIVACY_ID", "limit": "50"})
    assert "ix_consultation_category_queue" in first, first
    if container.engine.dialect.name == "postgresql":
        assert "Backward using ix_consultation_category_queue" in first, first
        assert "Sort" not in first.split("SubPlan")[0], first  # the index gives the order: no sort
    else:
        assert "USE TEMP B-TREE FOR ORDER BY" not in first, first
