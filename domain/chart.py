"""Walking the contact-desk chart (各種窓口のチャート).

The chart is stateless for the caller: every front door (web, LINE, chatbot) sends the full list of option
ids chosen so far and gets back either the next question or the outcome. Nothing is stored between steps,
so a LINE user can resume from any device and the same answers always give the same result.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass

from domain.errors import ValidationFailed
from domain.knowledge_model import Chart, ChartNode


class InvalidChartAnswer(ValidationFailed):
    """An answer does not match an option offered at that step (or comes after the outcome). The problem
    body carries the position of the bad answer, never the answer itself (it is caller input)."""

    code = "invalid_chart_answer"

    def __init__(
        self,
        detail: str,
        *,
        node_id: str | None = None,
        option_id: str | None = None,
        position: int | None = None,
    ):
        super().__init__("invalid_chart_answer", None, position=position if position is not None else -1)
        self.explanation = detail
        self.node_id = node_id
        self.option_id = option_id
        self.position = position


@dataclass(frozen=True)
class PathStep:
    node_id: str
    option_id: str


@dataclass(frozen=True)
class ChartStep:
    """Where a walk stands: `node` is the next question to ask, or the outcome when `done`."""

    chart_version: str
    node: ChartNode
    path: tuple[PathStep, ...]
    # At an outcome, "あわせて": the other goals chosen at a multiple question, then the outcome's own
    # suggestions; never the outcome itself, no repeats.
    also: tuple[ChartNode, ...] = ()

    @property
    def done(self) -> bool:
        return self.node.is_outcome

    @property
    def answers(self) -> tuple[str, ...]:
        return tuple(p.option_id for p in self.path)


def walk(chart: Chart, answers: Sequence[str]) -> ChartStep:
    """Follow `answers` (option ids, in order, from the start node) and return where they lead."""
    node = chart.node(chart.start)
    if node is None:  # only possible with an unvalidated chart
        raise InvalidChartAnswer(f"chart has no start node '{chart.start}'", node_id=chart.start)
    path: list[PathStep] = []
    chosen_also: list[str] = []
    at_multiple: ChartNode | None = None  # the multiple question just answered, while its options follow
    for position, option_id in enumerate(answers):
        if at_multiple is not None:
            extra = at_multiple.option(option_id)
            if extra is not None:  # another goal of the same question
                path.append(PathStep(at_multiple.id, option_id))
                chosen_also.append(extra.next)
                continue
        if node.is_outcome:
            raise InvalidChartAnswer(
                f"answer #{position + 1} '{option_id}' comes after the outcome '{node.id}'",
                node_id=node.id,
                option_id=option_id,
                position=position,
            )
        option = node.option(option_id)
        if option is None:
            raise InvalidChartAnswer(
                f"'{option_id}' is not an option of '{node.id}'",
                node_id=node.id,
                option_id=option_id,
                position=position,
            )
        nxt = chart.node(option.next)
        if nxt is None:
            raise InvalidChartAnswer(
                f"option '{option_id}' leads to unknown node '{option.next}'",
                node_id=node.id,
                option_id=option_id,
                position=position,
            )
        path.append(PathStep(node.id, option_id))
        at_multiple = node if node.multiple else None
        node = nxt
    also: list[ChartNode] = []
    if node.is_outcome:
        for other_id in (*chosen_also, *node.also):
            other = chart.node(other_id)
            if other is not None and other.is_outcome and other.id != node.id and other not in also:
                also.append(other)
    return ChartStep(chart_version=chart.version, node=node, path=tuple(path), also=tuple(also))


def iter_paths(chart: Chart) -> Iterator[tuple[str, ...]]:
    """Every answer sequence from the start to an outcome (the chart must be acyclic, i.e. validated)."""

    def go(node: ChartNode, prefix: tuple[str, ...]) -> Iterator[tuple[str, ...]]:
        if node.is_outcome:
            yield prefix
            return
        for option in node.options:
            nxt = chart.node(option.next)
            if nxt is not None:
                yield from go(nxt, prefix + (option.id,))

    start = chart.node(chart.start)
    if start is not None:
        yield from go(start, ())
