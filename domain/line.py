"""What the LINE official account says, as plain data in the Messaging API's message shape (no I/O).

The chart walk is stateless: every quick-reply button carries the full list of option ids chosen so far in its
postback data (`chart:danger_no,topic_abuse`), so nothing about a conversation is stored between steps and a
person can pick up from any device. Messages never repeat what the person wrote.
"""

from __future__ import annotations

import enum
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from domain.knowledge_model import ChartNode, Desk, Guide
from domain.languages import BASE, language_list_problems, pick, text_problems

Message = dict[str, object]

CHART_PREFIX = "chart:"
MENU_PREFIX = "menu:"
LANG_PREFIX = "lang:"  # postback data that switches the conversation's language: "lang:en"
POSTBACK_MAX = 300  # Messaging API limit on postback data
LABEL_MAX = 20  # quick-reply and action labels
TEXT_MAX = 5000
QUICK_REPLY_MAX = 13
MESSAGES_MAX = 5  # per reply or push request
OPTION_ID = re.compile(r"^[A-Za-z0-9_.-]{1,64}$")
LANG_CODE = re.compile(r"^[a-z]{2,3}$")
MENU_WORDS = frozenset({"メニュー", "めにゅー", "menu", "ヘルプ", "help", "はじめから", "最初から"})

ANSWER_NOTICE = (
    "相談への回答が届きました。マイページでご確認ください。"  # answer_notice_ja of line_texts.yaml
)


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
    """Decoded postback data: a chart walk (answers so far), a menu item or a language; `kind` is "unknown"
    otherwise."""

    kind: str
    answers: tuple[str, ...] = ()
    item: MenuItem | None = None
    lang: str | None = None


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
    if data.startswith(LANG_PREFIX):
        lang = data[len(LANG_PREFIX) :]
        return Postback("language", lang=lang) if LANG_CODE.match(lang) else Postback("unknown")
    if data.startswith(MENU_PREFIX):
        try:
            return Postback("menu", item=MenuItem(data[len(MENU_PREFIX) :]))
        except ValueError:
            return Postback("unknown")
    return Postback("unknown")


def is_menu_request(text: str) -> bool:
    """A typed keyword that asks for the menu instead of triage."""
    return text.strip().lower() in MENU_WORDS


# -- the texts, per language ------------------------------------------------------------------------


class LineTextsError(ValueError):
    def __init__(self, problems: list[str]) -> None:
        self.problems = problems
        super().__init__("; ".join(problems))


TEXT_NAMES = (
    "menu_button_chart",
    "menu_button_howto",
    "menu_button_evidence",
    "menu_button_home",
    "menu_button_link",
    "button_menu",
    "button_restart",
    "button_restart_chart",
    "button_mypage",
    "button_link",
    "menu",
    "greeting",
    "language_switched",
    "how_to_consult",
    "evidence_title",
    "evidence_fallback",
    "evidence_more",
    "chart_outcome_default_title",
    "desks_heading",
    "guides_heading",
    "consult_on_mypage",
    "desk_phone",
    "desk_hours",
    "chart_restart",
    "triage_no_match",
    "triage_urgent",
    "triage_categories",
    "list_separator",
    "triage_footer",
    "unsupported",
    "link_prompt",
    "link_already",
    "link_done",
    "link_failed",
    "answer_notice",
    "bullet",
)


@dataclass(frozen=True)
class LineTexts:
    """domain/knowledge/line_texts.yaml: every text as `<name>_<language>`, the declared languages, their
    names (the switch buttons) and the typed words that switch to each."""

    texts: dict[str, str]
    languages: tuple[str, ...] = (BASE,)
    language_names: dict[str, str] = field(default_factory=dict)
    keywords: dict[str, tuple[str, ...]] = field(default_factory=dict)

    @classmethod
    def from_raw(cls, raw: object) -> LineTexts:
        """Shape and validate; LineTextsError lists every problem (a declared language with a missing text)."""
        if not isinstance(raw, dict):
            raise LineTextsError(["line_texts: expected a mapping"])
        given = raw.get("texts")
        texts_raw: dict[Any, Any] = given if isinstance(given, dict) else {}
        languages = tuple(str(x) for x in raw.get("languages") or (BASE,))
        names = {str(k): str(v) for k, v in (raw.get("language_names") or {}).items()}
        keywords = {
            str(k): tuple(str(w).strip().lower() for w in v or ())
            for k, v in (raw.get("keywords") or {}).items()
        }
        texts = {str(k): str(v) for k, v in texts_raw.items() if isinstance(v, str)}
        problems = language_list_problems(languages, "line_texts.languages")
        problems += [
            f"line_texts.texts: '{k}' must be a string"
            for k, v in texts_raw.items()
            if not isinstance(v, str)
        ]
        problems += [
            f"line_texts.texts: missing '{n}_{BASE}'" for n in TEXT_NAMES if f"{n}_{BASE}" not in texts
        ]
        problems += text_problems(texts, languages, "line_texts.texts")
        for lang in languages:
            if len(languages) > 1 and not names.get(lang, "").strip():
                problems.append(f"line_texts.language_names: no name for declared language '{lang}'")
            if len(languages) > 1 and not keywords.get(lang):
                problems.append(f"line_texts.keywords: no keyword for declared language '{lang}'")
        problems += [
            f"line_texts: '{k}' is not a declared language" for k in {*names, *keywords} if k not in languages
        ]
        if problems:
            raise LineTextsError(problems)
        return cls(texts, languages, names, keywords)

    def speaks(self, lang: str | None) -> bool:
        return lang in self.languages

    def language_of_keyword(self, text: str) -> str | None:
        """The language a typed message switches to ("English", "日本語"), or None."""
        word = " ".join(text.split()).lower()
        return next((lang for lang, words in self.keywords.items() if word in words), None)

    def voice(self, lang: str | None) -> Voice:
        return Voice(self, lang if lang in self.languages else BASE)


@dataclass(frozen=True, slots=True)
class Voice:
    """The texts in one conversation's language."""

    catalogue: LineTexts
    lang: str = BASE

    def __call__(self, name: str, **values: object) -> str:
        text = pick(self.catalogue.texts, name, self.lang)
        return text.format(**values) if values else text

    def switches(self) -> list[Message]:
        """A quick-reply button for every other language, labelled in that language."""
        return [
            postback(self.catalogue.language_names.get(x, x), LANG_PREFIX + x)
            for x in self.catalogue.languages
            if x != self.lang
        ]

    @property
    def english_names(self) -> bool:
        """Desks and categories have Japanese and English names: any other language shows the English ones."""
        return self.lang != BASE


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


def menu_actions(links: Links, v: Voice) -> list[Message]:
    return [
        postback(v("menu_button_chart"), encode_menu(MenuItem.chart)),
        postback(v("menu_button_howto"), encode_menu(MenuItem.howto)),
        postback(v("menu_button_evidence"), encode_menu(MenuItem.evidence)),
        uri(v("menu_button_home"), links.home),
        postback(v("menu_button_link"), encode_menu(MenuItem.link)),
        *v.switches(),
    ]


# -- conversations ----------------------------------------------------------------------------------


def menu(links: Links, v: Voice) -> list[Message]:
    return [text(v("menu", home=links.home), menu_actions(links, v))]


def greeting(links: Links, v: Voice) -> list[Message]:
    return [text(v("greeting")), *menu(links, v)]


def language_switched(links: Links, v: Voice) -> list[Message]:
    return [text(v("language_switched")), *menu(links, v)]


def how_to_consult(links: Links, v: Voice) -> list[Message]:
    return [
        text(
            v("how_to_consult", mypage=links.mypage),
            [
                postback(v("menu_button_evidence"), encode_menu(MenuItem.evidence)),
                postback(v("menu_button_chart"), encode_menu(MenuItem.chart)),
                uri(v("button_mypage"), links.mypage),
            ],
        )
    ]


def evidence_tips(links: Links, guide: Guide | None, v: Voice) -> list[Message]:
    if guide is None:
        steps = v("evidence_fallback")
    else:
        steps = (
            guide.text("summary", v.lang)
            + "\n"
            + "\n".join(v("bullet") + f"{s.text('title', v.lang)}" for s in guide.steps)
        )
    return [
        text(
            f"{v('evidence_title')}\n{steps}\n{v('evidence_more', home=links.home)}",
            [
                postback(v("menu_button_howto"), encode_menu(MenuItem.howto)),
                postback(v("button_menu"), encode_menu(MenuItem.menu)),
            ],
        )
    ]


def chart_question(node: ChartNode, answers: Sequence[str], links: Links, v: Voice) -> list[Message]:
    lines = [node.text("text", v.lang), ""]
    quick: list[Message] = []
    for n, option in enumerate(node.options, start=1):
        label = option.text("label", v.lang)
        lines.append(f"{n}. {label}")
        quick.append(postback(f"{n}. {label}", encode_chart([*answers, option.id]), label))
    if answers:
        quick.append(postback(v("button_restart"), encode_chart([]), v("button_restart")))
    quick.append(postback(v("button_menu"), encode_menu(MenuItem.menu)))
    return [text("\n".join(lines), quick)]


def _desk_lines(desks: Sequence[Desk], v: Voice) -> list[str]:
    lines = []
    for d in desks:
        parts = [v("bullet") + f"{d.name_en or d.name_ja if v.english_names else d.name_ja}"]
        if d.phone:
            parts.append(v("desk_phone", phone=d.phone))
        if d.hours_ja:
            parts.append(v("desk_hours", hours=d.hours_ja))
        if d.url:
            parts.append(f"  {d.url}")
        lines.append("\n".join(parts))
    return lines


def chart_outcome(
    node: ChartNode, desks: Sequence[Desk], guides: Sequence[Guide], links: Links, v: Voice
) -> list[Message]:
    body = [node.text("title", v.lang) or v("chart_outcome_default_title"), ""]
    guidance = node.text("guidance", v.lang)
    if guidance:
        body += [guidance, ""]
    if desks:
        body += [v("desks_heading"), *_desk_lines(desks, v), ""]
    if guides:
        body += [
            v("guides_heading"),
            *[v("bullet") + f"{g.text('title', v.lang)}: {g.text('summary', v.lang)}" for g in guides],
            "",
        ]
    body.append(v("consult_on_mypage", mypage=links.mypage))
    return [
        text(
            "\n".join(body),
            [
                postback(v("button_restart"), encode_chart([]), v("button_restart_chart")),
                postback(v("menu_button_howto"), encode_menu(MenuItem.howto)),
                postback(v("button_menu"), encode_menu(MenuItem.menu)),
            ],
        )
    ]


def chart_restart(node: ChartNode, links: Links, v: Voice) -> list[Message]:
    """The answers no longer fit the chart (it changed, or the data was altered): start again."""
    return [text(v("chart_restart")), *chart_question(node, [], links, v)]


@dataclass(frozen=True, slots=True)
class TriageView:
    """Triage reduced to labels: what the bot may say back, never the words that triggered it."""

    categories: tuple[str, ...]  # labels in the conversation's language
    urgent: bool
    desks: tuple[Desk, ...]
    guides: tuple[Guide, ...]


def triage_reply(view: TriageView, links: Links, v: Voice) -> list[Message]:
    quick = [
        postback(v("menu_button_chart"), encode_menu(MenuItem.chart)),
        postback(v("menu_button_howto"), encode_menu(MenuItem.howto)),
        postback(v("button_menu"), encode_menu(MenuItem.menu)),
    ]
    if not view.categories and not view.desks:
        return [text(v("triage_no_match"), quick)]
    body: list[str] = []
    if view.urgent:
        body += [v("triage_urgent"), ""]
    if view.categories:
        body += [v("triage_categories", categories=v("list_separator").join(view.categories)), ""]
    if view.desks:
        body += [v("desks_heading"), *_desk_lines(view.desks, v), ""]
    if view.guides:
        body += [v("guides_heading"), *[v("bullet") + f"{g.text('title', v.lang)}" for g in view.guides], ""]
    body.append(v("triage_footer"))
    return [text("\n".join(body), quick)]


def unsupported_message(links: Links, v: Voice) -> list[Message]:
    return [text(v("unsupported"), menu_actions(links, v))]


def link_prompt(url: str, v: Voice) -> list[Message]:
    return [text(v("link_prompt"), [uri(v("button_link"), url)])]


def link_already(v: Voice) -> list[Message]:
    return [text(v("link_already"))]


def link_done(v: Voice) -> list[Message]:
    return [text(v("link_done"))]


def link_failed(v: Voice) -> list[Message]:
    return [text(v("link_failed"))]


def clock_notice(kind: str, link: str, v: Voice) -> list[Message]:
    """A clock reminder (`clock_reminder` / `clock_overdue`): only that a date is near or past, and where to
    look; never what it is about."""
    return [text(f"{v(kind + '_notice')}\n{link}")]


def answer_published(link: str, v: Voice) -> list[Message]:
    """The push after an answer: no content of the consultation, only a pointer to the my-page."""
    return [text(f"{v('answer_notice')}\n{link}")]
