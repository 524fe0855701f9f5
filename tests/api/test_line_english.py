# ruff: noqa: F811 - the LINE harness's fixtures are imported, then named as test parameters
"""The LINE account in English (issue 14 item 23): a LINE user switches by typing "English" / "日本語" or with the
quick-reply button; the language is kept per LINE user for every later reply and for the answer notice."""

from __future__ import annotations

import re

from domain.actors import Role
from tests.api.consultation_helpers import answer, open_consultation, take
from tests.api.test_line import (  # noqa: F401 - the LINE harness's fixtures
    deliver,
    fake_line,
    line_app,
    line_client,
    line_container,
    line_user,
    link_account,
    quick_replies,
)
from tests.integration.fake_line import event, line_user_id, postback_event, text_event

KANA = re.compile(r"[\u3040-\u30ff]")


def untranslated(texts: list[str]) -> list[str]:
    """Lines of an English reply still in Japanese, except desk opening hours (said to be in Japanese)."""
    return [
        line
        for t in texts
        for line in t.split("\n")
        if KANA.search(line) and not line.strip().startswith("Hours (in Japanese): ")
    ]


async def test_a_line_user_switches_to_english_and_gets_english_replies(
    line_client, line_container, fake_line
) -> None:  # type: ignore[no-untyped-def]
    user = line_user_id()
    await deliver(line_client, event("follow", user))
    await line_container.worker.run_once()
    greeting = fake_line.sent()[-1]
    assert "友だち追加ありがとうございます" in greeting.texts[0]  # Japanese by default
    switch = [a for a in quick_replies(greeting) if a.get("data") == "lang:en"]
    assert [(a["type"], a["label"]) for a in switch] == [("postback", "English")]

    await deliver(line_client, text_event(user, "  English "))
    await line_container.worker.run_once()
    switched = fake_line.sent()[-1]
    assert switched.texts[0].startswith("From now on I will answer in English.")
    assert switched.texts[1].startswith("Choose from the menu.")
    assert untranslated(switched.texts) == []
    labels = {a["label"] for a in quick_replies(switched)}
    assert {"Find a desk", "How to consult", "Keep evidence", "Homepage", "Link account", "日本語"} <= labels
    row = await line_user(line_container, user)
    assert row is not None and row.language == "en"

    # Free text in English: triage, English labels and desk names, nothing echoed.
    words = "Someone posted my home address and my photos on a forum and strangers came to my door"
    await deliver(line_client, text_event(user, words))
    await line_container.worker.run_once()
    reply = fake_line.sent()[-1].texts
    joined = "\n".join(reply)
    assert "call 110" in joined and "This may concern: " in joined and "Desks" in joined
    assert "strangers came" not in joined
    assert untranslated(reply) == []

    # The chart, statelessly, in English.
    await deliver(line_client, postback_event(user, "menu:chart"))
    await line_container.worker.run_once()
    question = fake_line.sent()[-1]
    assert untranslated(question.texts) == []
    options = [a for a in quick_replies(question) if a["data"].startswith("chart:")]
    assert options and all(not KANA.search(a["label"]) for a in options)
    await deliver(line_client, postback_event(user, "chart:danger_yes"))
    await line_container.worker.run_once()
    outcome = fake_line.sent()[-1].texts
    assert "110" in "\n".join(outcome) and untranslated(outcome) == []

    # How to consult and keeping evidence (the guide's English steps).
    for item, start in (("menu:howto", "How to consult"), ("menu:evidence", "How to keep evidence")):
        await deliver(line_client, postback_event(user, item))
        await line_container.worker.run_once()
        texts = fake_line.sent()[-1].texts
        assert texts[0].startswith(start) and untranslated(texts) == [], item

    # Back to Japanese with the button.
    await deliver(line_client, postback_event(user, "lang:ja"))
    await line_container.worker.run_once()
    back = fake_line.sent()[-1]
    assert (
        back.texts[0] == "これからは日本語でご案内します。" and "メニューから選んでください" in back.texts[1]
    )
    row = await line_user(line_container, user)
    assert row is not None and row.language is None


async def test_the_japanese_keyword_switches_back_and_other_words_are_triaged(
    line_client, line_container, fake_line
) -> None:  # type: ignore[no-untyped-def]
    user = line_user_id()
    await deliver(line_client, postback_event(user, "lang:en"))
    await line_container.worker.run_once()
    assert fake_line.sent()[-1].texts[0].startswith("From now on I will answer in English.")
    await deliver(line_client, text_event(user, "日本語"))
    await line_container.worker.run_once()
    assert fake_line.sent()[-1].texts[0] == "これからは日本語でご案内します。"
    # "English" inside a sentence is not the keyword: the sentence is triaged.
    await deliver(line_client, text_event(user, "English speaking forum posted my address"))
    await line_container.worker.run_once()
    assert "関係しそうな内容" in "\n".join(fake_line.sent()[-1].texts)
    assert (await line_user(line_container, user)).language is None  # type: ignore[union-attr]


async def test_an_unknown_language_keeps_the_conversation_as_it_was(
    line_client, line_container, fake_line
) -> None:  # type: ignore[no-untyped-def]
    user = line_user_id()
    await deliver(line_client, postback_event(user, "lang:en"), postback_event(user, "lang:fr"))
    await line_container.worker.run_once()
    unknown = fake_line.sent()[-1]
    assert unknown.texts[0].startswith("Choose from the menu.")  # the menu, still in English
    assert (await line_user(line_container, user)).language == "en"  # type: ignore[union-attr]
    await deliver(line_client, postback_event(user, "lang:EN!"))
    await line_container.worker.run_once()
    assert fake_line.sent()[-1].texts[0].startswith("Choose from the menu.")


async def test_the_answer_notice_comes_in_the_chosen_language(
    client, line_client, line_container, fake_line, people
) -> None:  # type: ignore[no-untyped-def]
    person = await people.create(Role.consulter)
    user = line_user_id()
    await link_account(line_client, line_container, fake_line, person, user)
    await deliver(line_client, text_event(user, "english"))
    await line_container.worker.run_once()
    fake_line.reset()
    consultant = await people.create(Role.consultant)
    consultation = await open_consultation(client, person)
    await take(client, consultant, consultation["id"])
    await answer(client, consultant, consultation["id"], people=people)
    await line_container.worker.run_once()
    [push] = fake_line.of("push")
    assert push.texts[0].startswith("An answer to your consultation has arrived.")
    assert consultation["id"] in push.texts[0]
