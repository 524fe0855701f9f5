"""The turn engine (pure): a session state and one input to the next state and what to say, as desk codes
and guide slugs."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

from domain.chart import ChartStep
from domain.chatbot.model import (
    CHART_PREFIX,
    END,
    FLOW_PREFIX,
    LANG_PREFIX,
    LEADING_CATEGORIES,
    MENU,
    TRIAGE,
    Draft,
    Flows,
)
from domain.errors import ValidationFailed
from domain.languages import BASE
from domain.triage import TriageResult


@dataclass(frozen=True, slots=True)
class State:
    node: str = MENU
    chart: tuple[str, ...] | None = None  # answers so far while in the contact-desk chart
    draft: Draft = Draft()
    offered: tuple[tuple[str, str], ...] = ()  # (choice id, label) offered by the last bot turn
    lang: str = BASE  # the language the session speaks

    def to_dict(self) -> dict[str, Any]:
        return {
            "lang": self.lang,
            "node": self.node,
            "chart": list(self.chart) if self.chart is not None else None,
            "draft": self.draft.to_dict(),
            "offered": [list(c) for c in self.offered],
        }

    @classmethod
    def from_dict(cls, raw: Mapping[str, Any]) -> State:
        chart = raw.get("chart")
        return cls(
            node=str(raw.get("node") or MENU),
            chart=tuple(str(a) for a in chart) if isinstance(chart, list) else None,
            draft=Draft.from_dict(raw.get("draft")),
            offered=tuple((str(c[0]), str(c[1])) for c in raw.get("offered") or () if len(c) == 2),
            lang=str(raw.get("lang") or BASE),
        )

    def label_of(self, choice_id: str) -> str | None:
        return next((label for cid, label in self.offered if cid == choice_id), None)


@dataclass(frozen=True, slots=True)
class Say:
    """One bot message: text, then the desks (codes, resolved against the directory) and guides (slugs)."""

    text: str
    desks: tuple[str, ...] = ()
    guides: tuple[str, ...] = ()
    platforms: tuple[str, ...] = ()  # show these platforms' report routes


@dataclass(frozen=True, slots=True)
class Plan:
    state: State
    says: tuple[Say, ...]
    choices: tuple[tuple[str, str], ...]
    action: str | None = None  # "chart": walk the chart with state.chart; "handoff": issue a claim token


class UnknownChoice(ValidationFailed):
    code = "unknown_choice"

    def __init__(self) -> None:
        super().__init__("unknown_choice", field="choice_id")


class Engine:
    def __init__(self, flows: Flows) -> None:
        self.flows = flows

    def language(self, state: State) -> str:
        """The session's language; Japanese when the flows no longer speak the stored one."""
        return state.lang if self.flows.speaks(state.lang) else BASE

    # -- the fixed choices ---------------------------------------------------------------------------

    def menu_choices(self, lang: str = BASE) -> tuple[tuple[str, str], ...]:
        flows = tuple((FLOW_PREFIX + f.id, f.title(lang)) for f in self.flows.flows)
        # The language switch: every other declared language, named in itself ("English", "日本語").
        switch = tuple(
            (LANG_PREFIX + x, self.flows.language_names.get(x, x)) for x in self.flows.languages if x != lang
        )
        return flows + switch

    def _flow_choice(self, flow_id: str, lang: str, label: str | None = None) -> tuple[str, str]:
        f = self.flows.flow(flow_id)
        assert f is not None  # validated: the special flows exist
        return FLOW_PREFIX + f.id, label or f.title(lang)

    def _menu(self, lang: str) -> tuple[str, str]:
        return MENU, self.flows.label("menu", lang)

    def footer(self, lang: str = BASE) -> tuple[tuple[str, str], ...]:
        return (
            self._menu(lang),
            self._flow_choice("handoff", lang),
            (END, self.flows.label("end", lang)),
        )

    def _menu_say(self, lang: str) -> Say:
        return Say(self.flows.text("menu", lang))

    def _plan(
        self, state: State, says: Sequence[Say], choices: Sequence[tuple[str, str]], action: str | None = None
    ) -> Plan:
        unique = tuple(dict.fromkeys(choices))  # a node's own choice can repeat a footer one
        return Plan(replace(state, offered=unique), tuple(says), unique, action)

    # -- turns -----------------------------------------------------------------------------------------

    def greeting(self, lang: str = BASE) -> Plan:
        if not self.flows.speaks(lang):
            lang = BASE
        says = [
            Say(
                self.flows.text("greeting", lang) + "\n" + self.flows.text("privacy", lang),
                desks=self.flows.greeting_desks,
            ),
            self._menu_say(lang),
        ]
        return self._plan(State(lang=lang), says, self.menu_choices(lang))

    def choose(self, state: State, choice_id: str) -> Plan:
        if state.label_of(choice_id) is None:
            raise UnknownChoice()
        lang = self.language(state)
        if choice_id.startswith(LANG_PREFIX):
            new = choice_id[len(LANG_PREFIX) :]
            if not self.flows.speaks(new):
                raise UnknownChoice()
            says = [Say(self.flows.text("language_switched", new)), self._menu_say(new)]
            return self._plan(replace(state, lang=new, node=MENU, chart=None), says, self.menu_choices(new))
        if choice_id == MENU:
            return self._plan(
                replace(state, node=MENU, chart=None), [self._menu_say(lang)], self.menu_choices(lang)
            )
        if choice_id == END:
            restart = ((MENU, self.flows.label("restart", lang)),)
            return self._plan(
                replace(state, node=END, chart=None), [Say(self.flows.text("end", lang))], restart
            )
        if choice_id.startswith(CHART_PREFIX):
            if state.chart is None:
                raise UnknownChoice()
            answers = (*state.chart, choice_id[len(CHART_PREFIX) :])
            return Plan(replace(state, chart=answers), (), (), "chart")
        if choice_id.startswith(FLOW_PREFIX):
            return self._enter(replace(state, chart=None), choice_id, [])
        choice = self.flows.choice(choice_id)
        node = self.flows.node(state.node)
        if choice is None or node is None or choice not in node.choices:
            raise UnknownChoice()
        says = [Say(choice.note(lang))] if choice.note_ja else []
        return self._enter(replace(state, draft=state.draft.merge(choice.draft)), choice.next, says)

    def _enter(self, state: State, target: str, says: list[Say]) -> Plan:
        lang = self.language(state)
        if target.startswith(FLOW_PREFIX):
            f = self.flows.flow(target[len(FLOW_PREFIX) :])
            if f is None:
                raise UnknownChoice()
            state = replace(state, draft=state.draft.merge(f.draft))
            target = f.start
        node = self.flows.node(target)
        if node is None:
            raise UnknownChoice()
        state = replace(state, node=node.id, chart=None, draft=state.draft.merge(node.draft))
        routes = state.draft.platforms if node.platform_routes else ()
        say = Say(node.text(lang), node.desks, node.guides, routes)
        if node.kind == "question":
            # The way back to the menu is always open (an allowed loop, added by the engine).
            own = [(c.id, c.label(lang)) for c in node.choices]
            return self._plan(state, [*says, say], [*own, self._menu(lang)])
        if node.kind == "answer":
            own = [(c.id, c.label(lang)) for c in node.choices]
            return self._plan(state, [*says, say], [*own, *self.footer(lang)])
        if node.kind == "free_text":
            prompt = Say(self.flows.text("privacy", lang) + "\n" + node.text(lang), node.desks, node.guides)
            return self._plan(state, [*says, prompt], [self._menu(lang)])
        if node.kind == "chart":
            return Plan(replace(state, chart=()), (*says, say), (), "chart")
        # handoff
        return Plan(state, (*says, say), (), "handoff")

    def handoff_done(self, plan: Plan) -> Plan:
        lang = self.language(plan.state)
        says = (*plan.says, Say(self.flows.text("handoff_ready", lang)))
        return self._plan(plan.state, says, [self._menu(lang), (END, self.flows.label("end", lang))])

    def chart_step(self, plan: Plan, step: ChartStep) -> Plan:
        """The next chart question, or its outcome with desks and guides, after `walk_chart`."""
        lang = self.language(plan.state)
        node = step.node
        state = replace(plan.state, chart=tuple(step.answers))
        if not step.done:
            options = [(CHART_PREFIX + o.id, o.text("label", lang)) for o in node.options]
            return self._plan(state, [*plan.says, Say(node.text("text", lang))], [*options, self._menu(lang)])
        text = "\n".join(x for x in (node.text("title", lang), node.text("guidance", lang)) if x)
        if step.also:  # あわせて: what else applies (goals combine)
            sep = self.flows.text("list_separator", lang)
            also = self.flows.text("also", lang).format(
                titles=sep.join(n.text("title", lang) for n in step.also)
            )
            text += "\n" + also
        return self._plan(state, [*plan.says, Say(text, node.desks, node.guides)], self.footer(lang))

    def free_text(self, state: State, result: TriageResult) -> Plan:
        """Suggest flows and desks for triaged free text. Urgent flags put their desks first."""
        lang = self.language(state)
        says: list[Say] = []
        urgent = tuple(dict.fromkeys(code for f in result.urgency for code in f.desk_codes))
        if urgent:
            says.append(Say(self.flows.text("urgent_intro", lang), urgent))
        suggested: list[str] = []
        for s in result.categories:
            for f in self.flows.flows:
                if s.code in f.triage_categories and f.id not in suggested:
                    suggested.append(f.id)
        suggested = suggested[:2]
        desks = tuple(d for d in result.desk_codes if d not in urgent)[:3]
        guides = tuple(result.guide_slugs[:2])
        intro = self.flows.text("triage_intro" if suggested else "triage_no_match", lang)
        says.append(Say(intro, desks, guides))
        choices = [
            *(self._flow_choice(f, lang) for f in suggested),
            self._flow_choice("chart", lang),
            self._flow_choice("free_text", lang, self.flows.label("retry_free_text", lang)),
            self._flow_choice("handoff", lang),
            self._menu(lang),
        ]
        # The hand-off carries what triage suggested, as the guided flows carry what their choices set: the
        # leading suggestions only (at least half the best score), so a weak side match does not prefill.
        best = max((s.score for s in result.categories), default=0.0)
        leading = tuple(s.code for s in result.categories if best > 0 and s.score * 2 >= best)
        suggested_categories = Draft(categories=leading[:LEADING_CATEGORIES])
        state = replace(state, node=TRIAGE, chart=None, draft=state.draft.merge(suggested_categories))
        return self._plan(state, says, choices)
