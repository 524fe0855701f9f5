"""An independent check of published statistics: which withheld figures the published ones determine.

Written apart from domain/disclosure.py (dense exact elimination over the rationals, no shared code), so a
test that uses it checks the rule rather than repeating it. A figure is determined when its unit vector lies in
the row space of the equations restricted to the withheld unknowns."""

from __future__ import annotations

from collections.abc import Hashable, Mapping, Sequence
from fractions import Fraction
from typing import Any

Equation = list[tuple[Hashable, int]]


def determined(shown: Mapping[Hashable, int | None], equations: Sequence[Equation]) -> set[Hashable]:
    unknown = sorted((e for e, v in shown.items() if v is None), key=repr)
    index = {e: k for k, e in enumerate(unknown)}
    pivots: list[tuple[int, list[Fraction]]] = []
    for equation in equations:
        row = [Fraction(0)] * len(unknown)
        for e, sign in equation:
            if e in index:
                row[index[e]] += sign
        for col, prow in pivots:
            if row[col]:
                factor = row[col] / prow[col]
                row = [a - factor * b for a, b in zip(row, prow, strict=True)]
        lead = next((k for k, a in enumerate(row) if a), None)
        if lead is None:
            continue
        for n, (col, prow) in enumerate(pivots):
            if prow[lead]:
                factor = prow[lead] / row[lead]
                pivots[n] = (col, [a - factor * b for a, b in zip(prow, row, strict=True)])
        pivots.append((lead, row))
    return {unknown[col] for col, prow in pivots if sum(1 for a in prow if a) == 1}


def table_equations(
    name: str, rows: Mapping[str, Sequence[int | None]], totals: Sequence[int | None]
) -> tuple[dict[Hashable, int | None], list[Equation]]:
    """A published table: `rows` key → [cells..., row total], `totals` [column totals..., grand total]."""
    shown: dict[Hashable, int | None] = {}
    width = len(totals)
    for key, line in rows.items():
        for j, v in enumerate(line):
            shown[(name, key, j)] = v
    for j, v in enumerate(totals):
        shown[(name, "", j)] = v
    equations: list[Equation] = []
    for key in [*rows, ""]:
        equations.append([((name, key, j), 1) for j in range(width - 1)] + [((name, key, width - 1), -1)])
    for j in range(width):
        equations.append([((name, key, j), 1) for key in rows] + [((name, "", j), -1)])
    return shown, equations


def linked_equations(
    group: str, leaf: str, parent: Mapping[str, str], groups: Sequence[str], leaves: Sequence[str], width: int
) -> list[Equation]:
    """Group cell = the sum of its leaves' cells, for every column and the total."""
    out: list[Equation] = []
    for g in groups:
        children = [k for k in leaves if parent.get(k) == g]
        if children:
            for j in range(width):
                out.append([((leaf, k, j), 1) for k in children] + [((group, g, j), -1)])
    return out


def json_rows(table: Mapping[str, Any]) -> tuple[dict[str, list[int | None]], list[int | None]]:
    return (
        {r["key"]: [*r["cells"], r["total"]] for r in table["rows"]},
        [*table["column_totals"], table["total"]],
    )
