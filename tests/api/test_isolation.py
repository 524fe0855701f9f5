"""The harness's isolation (tests/conftest.py `_isolated`): a test that runs in the rolled-back transaction
sees its own commits, and the next test sees none of them. The two tests run in this order (file order)."""

from __future__ import annotations

import pytest

from domain.actors import Role

EMAIL = "isolation-check@example.jp"


async def test_a_commit_inside_the_test_is_seen_by_the_next_unit_of_work(container, people, client) -> None:
    person = await people.create(Role.consulter, email=EMAIL)
    async with container.accounts.uow() as uow:  # a unit of work of its own, after the one that committed
        assert (await uow.users.get_by_email(EMAIL)) is not None
    me = await client.get("/v1/me", headers=person.headers)
    assert me.status_code == 200, me.text


async def test_the_previous_test_left_nothing_behind(container, people) -> None:
    async with container.accounts.uow() as uow:
        assert (await uow.users.get_by_email(EMAIL)) is None
    await people.create(Role.consulter, email=EMAIL)  # the address is free again


@pytest.mark.commits
async def test_a_committing_test_commits_for_real(container, people) -> None:
    await people.create(Role.consulter, email=EMAIL)
    async with container.engine.connect() as conn:  # another connection sees it: it was committed
        from sqlalchemy import text

        found = await conn.execute(text("SELECT count(*) FROM app_user WHERE email = :e"), {"e": EMAIL})
        assert found.scalar_one() == 1


async def test_and_is_emptied_afterwards(container) -> None:
    async with container.accounts.uow() as uow:
        assert (await uow.users.get_by_email(EMAIL)) is None
