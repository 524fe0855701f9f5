"""Shared builders for consultation tests."""

from __future__ import annotations

import copy
import uuid
from typing import Any

from api.schemas.consultations import INTAKE_EXAMPLE


def intake(**overrides: Any) -> dict[str, Any]:
    body = copy.deepcopy(INTAKE_EXAMPLE)
    body.update(overrides)
    return body


async def open_consultation(client, person, **overrides: Any) -> dict[str, Any]:  # type: ignore[no-untyped-def]
    response = await client.post("/v1/consultations", headers=person.headers, json=intake(**overrides))
    assert response.status_code == 201, response.text
    return response.json()  # type: ignore[no-any-return]


async def etag(client, person, consultation_id: str) -> str:  # type: ignore[no-untyped-def]
    response = await client.get(f"/v1/consultations/{consultation_id}", headers=person.headers)
    assert response.status_code == 200, response.text
    return response.headers["etag"]  # type: ignore[no-any-return]


async def take(client, consultant, consultation_id: str) -> dict[str, Any]:  # type: ignore[no-untyped-def]
    tag = await etag(client, consultant, consultation_id)
    response = await client.post(
        f"/v1/consultations/{consultation_id}/assign",
        headers={**consultant.headers, "If-Match": tag},
        json={"assignee_id": str(consultant.id)},
    )
    assert response.status_code == 200, response.text
    return response.json()  # type: ignore[no-any-return]


async def answer(
    client, staff, consultation_id: str, text: str = "削除依頼の方法をご案内します。", *, people=None
) -> dict[str, Any]:  # type: ignore[no-untyped-def]
    """Publish an answer the way staff do: a draft, the legal advisor's approval when the rules ask for it,
    then publication."""
    base = f"/v1/consultations/{consultation_id}/answers"
    draft = await client.post(
        base, headers=staff.headers, json={"body": text, "manual_sections": ["evidence"]}
    )
    assert draft.status_code == 201, draft.text
    draft_id = draft.json()["id"]
    if draft.json()["needs_review"]:
        assert people is not None, "this consultation needs the legal advisor: pass people="
        from domain.actors import Role

        advisor = await people.create(Role.legal_advisor)
        assert (await client.post(f"{base}/{draft_id}/submit", headers=staff.headers)).status_code == 200
        approved = await client.post(f"/v1/reviews/{draft_id}/approve", headers=advisor.headers, json={})
        assert approved.status_code == 200, approved.text
    published = await client.post(f"{base}/{draft_id}/publish", headers=staff.headers)
    assert published.status_code == 200, published.text
    return published.json()  # type: ignore[no-any-return]


def random_id() -> str:
    return str(uuid.uuid4())


async def every_page(client, url: str, headers: dict[str, str], **params: Any) -> list[dict[str, Any]]:  # type: ignore[no-untyped-def]
    """Every item of a paged list, following `next_cursor` to the end."""
    items: list[dict[str, Any]] = []
    cursor = None
    while True:
        response = await client.get(
            url, headers=headers, params={**params, **({"cursor": cursor} if cursor else {})}
        )
        assert response.status_code == 200, response.text
        page = response.json()
        items.extend(page["items"])
        cursor = page["next_cursor"]
        if cursor is None:
            return items
