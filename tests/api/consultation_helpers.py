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
    client, staff, consultation_id: str, text: str = "削除依頼の方法をご案内します。"
) -> dict[str, Any]:  # type: ignore[no-untyped-def]
    response = await client.post(
        f"/v1/consultations/{consultation_id}/messages",
        headers=staff.headers,
        json={"body": text, "kind": "answer"},
    )
    assert response.status_code == 201, response.text
    return response.json()  # type: ignore[no-any-return]


def random_id() -> str:
    return str(uuid.uuid4())
