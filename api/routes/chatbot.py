"""The homepage chatbot: anonymous, rate-limited sessions; guided flows; free text through triage; and a
hand-off the person completes on the my-page. Routes parse, call one use case, shape."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Header, Path, Request, Response, Security, status
from fastapi.security import APIKeyHeader

from api.deps import ContainerDep, Person, client_address, require
from api.schemas.chatbot import (
    BotMessageOut,
    ChatDraftOut,
    ChatMessageIn,
    ChatSessionCreated,
    ChatSessionIn,
    ChatTranscriptOut,
    ChatTurnOut,
    ChoiceOut,
    ClaimIn,
    HandoffOut,
    LinkOut,
    TranscriptEntryOut,
)
from api.schemas.common import problem_responses
from api.schemas.text import SingleLine
from domain import policy
from domain.chatbot import BotMessage, TurnReply
from domain.errors import ValidationFailed
from domain.languages import choose_language
from infra import metrics

router = APIRouter(prefix="/v1/chatbot", tags=["chatbot"])

# A header, never the URL: URLs end up in access logs, browser history and Referer headers.
# A security scheme, so generated clients send it like a credential; a missing or wrong token answers the same
# 404 as an unknown session (checked in the use case), never a 401 that would confirm the session exists.
chatbot_token = APIKeyHeader(
    name="X-Chatbot-Token",
    scheme_name="ChatbotToken",
    description="The session_token from POST /v1/chatbot/sessions",
    auto_error=False,
)
ChatbotToken = Annotated[str | None, Security(chatbot_token)]


SessionId = Annotated[str, Path(max_length=64), SingleLine()]


def _no_store(response: Response) -> None:
    # Bodies carry tokens or a transcript: no shared or browser cache may keep them.
    response.headers["Cache-Control"] = "no-store"


def messages_out(messages: tuple[BotMessage, ...]) -> list[BotMessageOut]:
    return [
        BotMessageOut(text=m.text, links=[LinkOut(title=link.title, url=link.url) for link in m.links])
        for m in messages
    ]


def choices_out(choices: tuple[tuple[str, str], ...]) -> list[ChoiceOut]:
    return [ChoiceOut(id=cid, label=label) for cid, label in choices]


def turn_out(reply: TurnReply) -> ChatTurnOut:
    return ChatTurnOut(
        messages=messages_out(reply.messages),
        choices=choices_out(reply.choices),
        handoff=HandoffOut(claim_token=reply.handoff.claim_token, expires_at=reply.handoff.expires_at)
        if reply.handoff
        else None,
        expires_at=reply.expires_at,
        language=reply.lang,
    )


@router.post(
    "/sessions",
    operation_id="chatbot_session_create",
    status_code=status.HTTP_201_CREATED,
    response_model=ChatSessionCreated,
    responses=problem_responses(422, 429),
    summary="Start an anonymous chatbot session: a session token and the greeting with the menu",
)
async def create_session(
    container: ContainerDep,
    request: Request,
    response: Response,
    body: ChatSessionIn | None = None,
    accept_language: Annotated[
        str | None,
        Header(
            max_length=512,
            description="Used when the body names no `language`: the best supported language (ja, en) by "
            "q-value; unsupported ones are ignored and the session speaks Japanese.",
            examples=["en-US,en;q=0.9"],
        ),
    ] = None,
) -> ChatSessionCreated:
    """Anonymous. The `session_token` is returned once and must be sent in X-Chatbot-Token on every later call (never in a URL). Rate-limited per client address.

    The session speaks one language: `language` in the body (`ja`, `en`; another value answers 422 `unsupported_language`), else the best supported one of Accept-Language, else Japanese. The menu offers `lang:<code>` choices (labelled in that language, e.g. "English", "日本語") that switch it at any time from the menu."""
    bot = container.chatbot
    if body is None and (await request.body()).strip():
        # An explicit JSON `null` is not "no body": the body, when sent, is an object.
        raise ValidationFailed("validation_failed", field="body")
    lang = choose_language(body.language if body else None, accept_language, bot.languages)
    opened = await bot.open(address=client_address(request), lang=lang)
    metrics.CHATBOT_SESSIONS_STARTED.inc()
    response.headers["Location"] = f"/v1/chatbot/sessions/{opened.session_id}"
    _no_store(response)
    return ChatSessionCreated(
        session_id=opened.session_id,
        session_token=opened.token,
        expires_at=opened.expires_at,
        turn=turn_out(opened.reply),
        languages=list(bot.languages),
    )


@router.get(
    "/sessions/{session_id}",
    operation_id="chatbot_session_get",
    response_model=ChatTranscriptOut,
    responses=problem_responses(404, 429),
    summary="The transcript so far and the open choices (after a page reload)",
)
async def get_session(
    session_id: SessionId,
    container: ContainerDep,
    request: Request,
    response: Response,
    token: ChatbotToken = None,
) -> ChatTranscriptOut:
    t = await container.chatbot.transcript(session_id, token, address=client_address(request))
    _no_store(response)
    return ChatTranscriptOut(
        session_id=t.session_id,
        expires_at=t.expires_at,
        turns=[
            TranscriptEntryOut(
                role=e.role,  # type: ignore[arg-type]  # domain/chatbot.py types it str; it is bot | user
                at=e.at,
                text=e.text,
                messages=messages_out(e.messages),
                choices=choices_out(e.choices),
                handoff_expires_at=e.handoff_expires_at,
            )
            for e in t.entries
        ],
        choices=choices_out(t.choices),
        language=t.lang,
    )


@router.post(
    "/sessions/{session_id}/messages",
    operation_id="chatbot_message_send",
    response_model=ChatTurnOut,
    responses=problem_responses(404, 409, 422, 429),
    summary="Send a choice or free text; get the bot's answer, the next choices and, on hand-off, a claim token",
)
async def send_message(
    session_id: SessionId,
    body: ChatMessageIn,
    container: ContainerDep,
    request: Request,
    response: Response,
    token: ChatbotToken = None,
) -> ChatTurnOut:
    """Exactly one of `choice_id` or `text`. Free text is triaged and is neither stored nor logged. A wrong, missing or expired token answers 404, exactly like an unknown session."""
    reply = await container.chatbot.reply(
        session_id, token, choice_id=body.choice_id, text=body.text, address=client_address(request)
    )
    _no_store(response)
    return turn_out(reply)


@router.post(
    "/drafts/claim",
    operation_id="chatbot_draft_claim",
    response_model=ChatDraftOut,
    responses=problem_responses(401, 403, 422),
    summary="Consulters: take over a chatbot hand-off (once) to prefill the consultation form",
    dependencies=[require(policy.CONSULTERS)],
)
async def claim_draft(
    body: ClaimIn, actor: Person, container: ContainerDep, response: Response
) -> ChatDraftOut:
    """A signed-in consulter exchanges the single-use `claim_token` from a chatbot hand-off for the categories, outcomes and platforms to prefill the consultation form."""
    draft = await container.chatbot.claim(actor, body.claim_token)
    _no_store(response)
    return ChatDraftOut(
        categories=list(draft.categories),
        desired_outcomes=list(draft.desired_outcomes),
        platforms=list(draft.platforms),
    )
