"""What the LINE official account says, as plain data in the Messaging API's message shape (no I/O).

The chart walk is stateless: every quick-reply button carries the full list of option ids chosen so far in its
postback data (`chart:danger_no,topic_abuse`), so nothing about a conversation is stored between steps and a
person can pick up from any device. Messages never repeat what the person wrote.
"""

from __future__ import annotations

import enum
import re
from collections.abc import Sequence
from dataclasses import dataclass

from domain.knowledge_model import ChartNode, Desk, Guide

Message = dict[str, object]

CHART_PREFIX = "chart:"
MENU_PREFIX = "menu:"
POSTBACK_MAX = 300  # Messaging API limit on postback data
LABEL_MAX = 20  # quick-reply and action labels
TEXT_MAX = 5000
QUICK_REPLY_MAX = 13
MESSAGES_MAX = 5  # per reply or push request
OPTION_ID = re.compile(r"^[A-Za-z0-9_.-]{1,64}$")
MENU_WORDS = frozenset({"メニュー", "めにゅー", "menu", "ヘルプ", "help", "はじめから", "最初から"})

ANSWER_NOTICE = "相談への回答が届きました。マイページでご確認ください。"
CLOCK_NOTICES = {
    "clock_reminder": "ご相談に関係する期限が近づいています。マイページでご確認ください。",
    "clock_overdue": "ご相談に関係する期限が過ぎました。次の相談先をマイページでご案内しています。",
}


class MenuItem(enum.StrEnum):
    chart = "chart"
    howto = "howto"
    evidence = "evidence"
    link = "link"
    menu = "menu"


@dataclass(frozen=True, slots=True)
class Links:
    """Where the bot points people: the homepage (MADOGUCHI_PUBLIC_URL) and the my-page."""

    home: str

    @property
    def mypage(self) -> str:
        return self.home.rstrip("/") + "/consultations"

    def consultation(self, consultation_id: str) -> str:
        return self.home.rstrip("/") + "/consultations/" + consultation_id


@dataclass(frozen=True, slots=True)
class Postback:
    """Decoded postback data: a chart walk (answers so far) or a menu item; `kind` is "unknown" otherwise."""

    kind: str
    answers: tuple[str, ...] = ()
    item: MenuItem | None = None


# -- postback encoding ------------------------------------------------------------------------------


def encode_chart(answers: Sequence[str]) -> str:
    data = CHART_PREFIX + ",".join(answers)
    if len(data) > POSTBACK_MAX:
        raise ValueError("chart path too long for postback data")
    return data


def encode_menu(item: MenuItem) -> str:
    return MENU_PREFIX + item.value


def decode_postback(data: str) -> Postback:
    if len(data) > POSTBACK_MAX:
        return Postback("unknown")
    if data.startswith(CHART_PREFIX):
        rest = data[len(CHART_PREFIX) :]
        answers = tuple(a for a in rest.split(",") if a) if rest else ()
        if all(OPTION_ID.match(a) for a in answers):
            return Postback("chart", answers=answers)
        return Postback("unknown")
    if data.startswith(MENU_PREFIX):
        try:
            return Postback("menu", item=MenuItem(data[len(MENU_PREFIX) :]))
        except ValueError:
            return Postback("unknown")
    return Postback("unknown")


def is_menu_request(text: str) -> bool:
    """A typed keyword that asks for the menu instead of triage."""
    return text.strip().lower() in MENU_WORDS


# -- building blocks --------------------------------------------------------------------------------


def _clip(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def text(body: str, quick: Sequence[Message] = ()) -> Message:
    message: Message = {"type": "text", "text": _clip(body, TEXT_MAX)}
    if quick:
        message["quickReply"] = {"items": [{"type": "action", "action": a} for a in quick[:QUICK_REPLY_MAX]]}
    return message


def postback(label: str, data: str, display: str | None = None) -> Message:
    return {
        "type": "postback",
        "label": _clip(label, LABEL_MAX),
        "data": data,
        "displayText": _clip(display or label, 300),
    }


def uri(label: str, link: str) -> Message:
    return {"type": "uri", "label": _clip(label, LABEL_MAX), "uri": link}


def menu_actions(links: Links) -> list[Message]:
    return [
        postback("窓口チャート", encode_menu(MenuItem.chart)),
        postback("相談のしかた", encode_menu(MenuItem.howto)),
        postback("証拠の残し方", encode_menu(MenuItem.evidence)),
        uri("ホームページ", links.home),
        postback("アカウント連携", encode_menu(MenuItem.link)),
    ]


# -- conversations ----------------------------------------------------------------------------------


def menu(links: Links) -> list[Message]:
    return [
        text(
            "メニューから選んでください。\n"
            "・窓口チャート: 質問に答えると、合った相談窓口をご案内します\n"
            "・相談のしかた: 当センターへの相談の流れ\n"
            "・証拠の残し方: 削除や相談の前に記録を残すコツ\n"
            "・アカウント連携: 回答が届いたときにLINEでお知らせします\n"
            "困っていることを短く送っていただくと、関係しそうな窓口もご案内します(送られた文章は保存しません)。\n"
            f"ホームページ: {links.home}",
            menu_actions(links),
        )
    ]


def greeting(links: Links) -> list[Message]:
    return [
        text(
            "友だち追加ありがとうございます。違法・有害情報相談センターです。\n"
            "インターネット上の書き込みなどでお困りの方に、ご自身で削除依頼などを行うための方法や、"
            "適切な相談窓口をご案内しています。\n"
            "命や身体に危険が迫っているときは、すぐに110番(警察)または119番に連絡してください。"
        ),
        *menu(links),
    ]


def how_to_consult(links: Links) -> list[Message]:
    return [
        text(
            "相談のしかた\n"
            "1. まず「窓口チャート」で、ご自身の状況に合った窓口を確認できます。\n"
            "2. 当センターへの相談は、マイページから受け付けています(無料)。書き込みのURLと、"
            "どのような被害かを分かる範囲でお書きください。\n"
            "3. 回答はマイページでお届けします。アカウント連携をすると、回答が届いたときにLINEでお知らせします"
            "(LINEには相談の内容は送りません)。\n"
            "4. 相談の前に、書き込みの記録(証拠)を残しておいてください。\n"
            f"マイページ: {links.mypage}",
            [
                postback("証拠の残し方", encode_menu(MenuItem.evidence)),
                postback("窓口チャート", encode_menu(MenuItem.chart)),
                uri("マイページ", links.mypage),
            ],
        )
    ]


def evidence_tips(links: Links, guide: Guide | None) -> list[Message]:
    if guide is None:
        steps = "書き込みの内容・正確な日時・完全なURL・投稿者が同時に分かる記録を、削除依頼や通報の前に残してください。"
    else:
        steps = guide.summary_ja + "\n" + "\n".join(f"・{s.title_ja}" for s in guide.steps)
    return [
        text(
            f"証拠の残し方\n{steps}\n詳しくはホームページをご覧ください: {links.home}",
            [
                postback("相談のしかた", encode_menu(MenuItem.howto)),
                postback("メニュー", encode_menu(MenuItem.menu)),
            ],
        )
    ]


def chart_question(node: ChartNode, answers: Sequence[str], links: Links) -> list[Message]:
    lines = [node.text_ja, ""]
    quick: list[Message] = []
    for n, option in enumerate(node.options, start=1):
        lines.append(f"{n}. {option.label_ja}")
        quick.append(
            postback(f"{n}. {option.label_ja}", encode_chart([*answers, option.id]), option.label_ja)
        )
    if answers:
        quick.append(postback("最初から", encode_chart([]), "最初から"))
    quick.append(postback("メニュー", encode_menu(MenuItem.menu)))
    return [text("\n".join(lines), quick)]


def _desk_lines(desks: Sequence[Desk]) -> list[str]:
    lines = []
    for d in desks:
        parts = [f"・{d.name_ja}"]
        if d.phone:
            parts.append(f"  電話: {d.phone}")
        if d.hours_ja:
            parts.append(f"  受付: {d.hours_ja}")
        if d.url:
            parts.append(f"  {d.url}")
        lines.append("\n".join(parts))
    return lines


def chart_outcome(
    node: ChartNode, desks: Sequence[Desk], guides: Sequence[Guide], links: Links
) -> list[Message]:
    body = [node.title_ja or "ご案内", ""]
    if node.guidance_ja:
        body += [node.guidance_ja, ""]
    if desks:
        body += ["相談窓口", *_desk_lines(desks), ""]
    if guides:
        body += ["参考になる案内", *[f"・{g.title_ja}: {g.summary_ja}" for g in guides], ""]
    body.append(f"当センターへのご相談はマイページから: {links.mypage}")
    return [
        text(
            "\n".join(body),
            [
                postback("最初から", encode_chart([]), "窓口チャートを最初から"),
                postback("相談のしかた", encode_menu(MenuItem.howto)),
                postback("メニュー", encode_menu(MenuItem.menu)),
            ],
        )
    ]


def chart_restart(node: ChartNode, links: Links) -> list[Message]:
    """The answers no longer fit the chart (it changed, or the data was altered): start again."""
    return [text("チャートが更新されたため、最初からお答えください。"), *chart_question(node, [], links)]


@dataclass(frozen=True, slots=True)
class TriageView:
    """Triage reduced to labels: what the bot may say back, never the words that triggered it."""

    categories: tuple[str, ...]  # Japanese labels
    urgent: bool
    desks: tuple[Desk, ...]
    guides: tuple[Guide, ...]


def triage_reply(view: TriageView, links: Links) -> list[Message]:
    quick = [
        postback("窓口チャート", encode_menu(MenuItem.chart)),
        postback("相談のしかた", encode_menu(MenuItem.howto)),
        postback("メニュー", encode_menu(MenuItem.menu)),
    ]
    if not view.categories and not view.desks:
        return [
            text(
                "お送りいただいた内容から、合う窓口をうまく判断できませんでした。"
                "「窓口チャート」の質問に答えると、窓口をご案内できます。\n(送られた文章は保存していません)",
                quick,
            )
        ]
    body: list[str] = []
    if view.urgent:
        body += ["命や身体に危険が迫っているときは、すぐに110番(警察)または119番に連絡してください。", ""]
    if view.categories:
        body += ["関係しそうな内容: " + "、".join(view.categories), ""]
    if view.desks:
        body += ["相談できる窓口", *_desk_lines(view.desks), ""]
    if view.guides:
        body += ["参考になる案内", *[f"・{g.title_ja}" for g in view.guides], ""]
    body.append(
        "自動でのご案内です。詳しくは「窓口チャート」をお試しいただくか、マイページからご相談ください。"
    )
    body.append("(送られた文章は保存していません)")
    return [text("\n".join(body), quick)]


def unsupported_message(links: Links) -> list[Message]:
    return [
        text(
            "申し訳ありませんが、画像やスタンプなどの内容は確認できません。文章で送るか、メニューから選んでください。\n"
            "証拠の画像は、マイページからご相談いただくときに添付できます。",
            menu_actions(links),
        )
    ]


def link_prompt(url: str) -> list[Message]:
    return [
        text(
            "アカウント連携をすると、マイページに回答が届いたときにLINEでお知らせします"
            "(相談の内容はLINEには送りません)。\n"
            "下のボタンからマイページにログインして連携してください。リンクの有効期限は10分です。",
            [uri("連携する", url)],
        )
    ]


def link_already() -> list[Message]:
    return [
        text(
            "このLINEアカウントはすでにマイページと連携しています。解除はマイページから、"
            "またはこのアカウントをブロックすると行えます。"
        )
    ]


def link_done() -> list[Message]:
    return [text("マイページとの連携が完了しました。回答が届いたときにLINEでお知らせします。")]


def link_failed() -> list[Message]:
    return [
        text(
            "連携できませんでした。お手数ですが、メニューの「アカウント連携」からもう一度お試しください。",
        )
    ]


def clock_notice(kind: str, link: str) -> list[Message]:
    """A clock reminder: only that a date is near or past, and where to look; never what it is about."""
    return [text(f"{CLOCK_NOTICES[kind]}\n{link}")]


def answer_published(link: str) -> list[Message]:
    """The push after an answer: no content of the consultation, only a pointer to the my-page."""
    return [text(f"{ANSWER_NOTICE}\n{link}")]
