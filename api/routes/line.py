"""The LINE official account: the webhook (signature only, no bearer token), account linking for consulters,
and dead letters for admins."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Header, Request, Response, status

from api.deps import Admin, ContainerDep, Person
from api.schemas.common import problem_responses
from api.schemas.line import DeadLetterOut, LinkNonceIn, LinkNonceOut, LinkStatusOut, WebhookAck

router = APIRouter(tags=["line"])


@router.post(
    "/v1/line/webhook",
    operation_id="line_webhook",
    response_model=WebhookAck,
    responses=problem_responses(401, 413, 415, 422, 503),
    summary="LINE Messaging API webhook: verified by X-Line-Signature over the raw body, stored, answered at once",
    # The body is LINE's webhook payload (`destination`, `events`), read as raw bytes because the signature
    # covers them exactly: declaring it as a model would parse (and could reject) it before verification.
    description="Called by the LINE Platform only. The body is LINE's webhook payload "
    "(https://developers.line.biz/en/reference/messaging-api/#webhooks) and the `X-Line-Signature` header "
    "(base64 HMAC-SHA256 of the raw body with the channel secret) is required; "
    "no bearer token is accepted instead. Each event is stored once (redeliveries are no-ops) and processed "
    "by the worker.",
)
async def line_webhook(
    request: Request,
    container: ContainerDep,
    # Left out of the schema: only the LINE Platform can produce a valid one, and it is described above.
    x_line_signature: Annotated[str | None, Header(include_in_schema=False)] = None,
) -> WebhookAck:
    # The raw bytes, before any parsing: the signature covers them exactly as sent.
    body = await request.body()
    return WebhookAck(stored=await container.line.receive(body, x_line_signature))


@router.post(
    "/v1/line/link-nonce",
    operation_id="line_link_nonce_create",
    response_model=LinkNonceOut,
    responses=problem_responses(401, 403, 422),
    summary="Consulters: a single-use nonce that binds the LINE user of `link_token` to this account",
)
async def create_link_nonce(body: LinkNonceIn, actor: Person, container: ContainerDep) -> LinkNonceOut:
    """Part of LINE's account-link flow: redirect the browser to the returned `redirect_url`; the accountLink event then consumes the nonce (10 minutes, single use)."""
    made = await container.line.linking.create_nonce(actor, body.link_token)
    return LinkNonceOut(nonce=made.nonce, redirect_url=made.redirect_url, expires_at=made.expires_at)


@router.get(
    "/v1/line/link",
    operation_id="line_link_get",
    response_model=LinkStatusOut,
    responses=problem_responses(401, 403),
    summary="Consulters: whether this account is linked to a LINE user (the LINE user id is never shown)",
)
async def get_link(actor: Person, container: ContainerDep) -> LinkStatusOut:
    found = await container.line.linking.status(actor)
    return LinkStatusOut(linked=found.linked, linked_at=found.linked_at, following=found.following)


@router.delete(
    "/v1/line/link",
    operation_id="line_link_delete",
    status_code=status.HTTP_204_NO_CONTENT,
    response_class=Response,
    responses=problem_responses(401, 403),
    summary="Consulters: unlink LINE (no more notices on LINE); idempotent",
)
async def delete_link(actor: Person, container: ContainerDep) -> Response:
    await container.line.linking.unlink(actor)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.get(
    "/v1/line/dead-letters",
    operation_id="line_dead_letters_list",
    response_model=list[DeadLetterOut],
    responses=problem_responses(401, 403),
    summary="Admins: LINE messages that failed on every try (newest first, at most 100)",
)
async def list_dead_letters(actor: Admin, container: ContainerDep) -> list[DeadLetterOut]:
    return [DeadLetterOut.model_validate(d) for d in await container.line.dead_letters.newest(actor)]


@router.post(
    "/v1/line/dead-letters/{dead_letter_id}/replay",
    operation_id="line_dead_letters_replay",
    status_code=status.HTTP_202_ACCEPTED,
    response_model=DeadLetterOut,
    responses=problem_responses(401, 403, 404, 409),
    summary="Admins: send a dead letter again (as a push, with its original retry key)",
)
async def replay_dead_letter(
    dead_letter_id: uuid.UUID, actor: Admin, container: ContainerDep
) -> DeadLetterOut:
    return DeadLetterOut.model_validate(await container.line.dead_letters.replay(actor, dead_letter_id))
