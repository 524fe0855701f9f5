"""Statistical disclosure control: the one suppression rule every published figure goes through.

A table is published with its margins (row totals, column totals, the grand total), so each row and each
column of the table *extended by its margins* is a linear equation: the total equals the sum of the others.

1. Primary suppression: every entry (cell or total) with 0 < value < threshold is withheld.
2. Complementary suppression: a withheld entry must not be recoverable from the published ones. It is
   recoverable exactly when its unit vector lies in the row space of the equations restricted to the withheld
   unknowns (for a single two-way table, whose equations and withheld entries form a graph, that is when the
   entry's edge is a bridge). So, until no withheld entry is recoverable, a line with a single withheld entry
   is completed first, then the smallest published entry (non-zero first, inner cells before totals) of the
   equations of the first recoverable entry is withheld too. Each step withholds one more entry, so it reaches
   a fixed point.
3. Linked tables are one system: a hierarchy (category groups over their categories, platform kinds over their
   services) adds the equations "group cell = sum of its leaves' cells" for every column and the totals, and
   the same rule runs over the whole system, so a withheld leaf is never a group total minus the group's other
   leaves, nor a withheld group the sum of its leaves (`protect_linked`).

A one-dimensional table (a single row with its total) has one equation.

Zeros are not withheld for themselves: a zero points at nobody. They are withheld as a complement only when a
line has nothing else left to withhold.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from fractions import Fraction

DEFAULT_THRESHOLD = 5


@dataclass(frozen=True, slots=True)
class Protected:
    """A table with its margins after suppression: None where withheld."""

    cells: list[list[int | None]]
    row_totals: list[int | None]
    column_totals: list[int | None]
    total: int | None

    @property
    def withheld(self) -> int:
        n = sum(v is None for row in self.cells for v in row)
        n += sum(v is None for v in self.row_totals) + sum(v is None for v in self.column_totals)
        return n + (self.total is None)


Entry = tuple[int, int]  # (row, column) in the extended table; row R / column C are the margins


Key = tuple[int, ...]  # an entry of a system of linked tables: (table, row, column)


@dataclass(frozen=True, slots=True)
class System:
    """Published figures and the linear equations between them (each a list of (entry, coefficient) summing
    to zero). A single table with its margins is one system; linked tables (a hierarchy whose group rows are
    the sums of their leaf rows) are one system too, with the link equations added."""

    values: dict[Key, int]
    equations: list[list[tuple[Key, int]]]
    margins: frozenset[Key]


def derivable(system: System, withheld: set[Key]) -> list[Key]:
    """The withheld entries the published figures determine, sorted: those whose unit vector lies in the row
    space of the equations restricted to the withheld unknowns (exact elimination over the rationals)."""
    pivots: dict[Key, dict[Key, Fraction]] = {}  # lead unknown → its fully reduced row
    for equation in system.equations:
        row: dict[Key, Fraction] = {}
        for e, coefficient in equation:
            if e in withheld:
                row[e] = row.get(e, Fraction(0)) + coefficient
        row = {e: c for e, c in row.items() if c}
        for lead in [e for e in row if e in pivots]:
            factor = row.get(lead)
            if factor:
                for e, c in pivots[lead].items():
                    row[e] = row.get(e, Fraction(0)) - factor * c
                row = {e: c for e, c in row.items() if c}
        if not row:
            continue
        lead = min(row)
        scale = row[lead]
        row = {e: c / scale for e, c in row.items()}
        for other, prow in pivots.items():
            factor = prow.get(lead)
            if factor:
                for e, c in row.items():
                    prow[e] = prow.get(e, Fraction(0)) - factor * c
                pivots[other] = {e: c for e, c in prow.items() if c}
        pivots[lead] = row
    return sorted(lead for lead, row in pivots.items() if len(row) == 1)


def suppress(system: System, threshold: int, forced: frozenset[Key] = frozenset()) -> set[Key]:
    """The one rule on a system: primary suppression, then complements until no withheld entry is derivable.
    A line with a single withheld entry is completed first (within that line); then the first derivable entry
    gets a complement among the published entries of its equations (the smallest, non-zero first, inner cells
    before totals), or anywhere when its equations have nothing published left."""
    values = system.values
    withheld = {e for e, v in values.items() if 0 < v < threshold} | (set(forced) & set(values))

    def rank(e: Key) -> tuple[bool, int, bool, Key]:
        return (values[e] == 0, values[e], e in system.margins, e)

    members = [[e for e, _ in eq] for eq in system.equations]
    while True:
        single = next((m for m in members if sum(e in withheld for e in m) == 1), None)
        if single is not None:
            withheld.add(min((e for e in single if e not in withheld), key=rank))
            continue
        found = derivable(system, withheld)
        if not found:
            break
        near = {e for m in members if found[0] in m for e in m} - withheld or set(values) - withheld
        if not near:
            break
        withheld.add(min(near, key=rank))
    return withheld


def _table(cells: Sequence[Sequence[int]], tag: tuple[int, ...] = ()) -> tuple[System, int, int]:
    """One table with its margins as a system: entry `tag + (i, j)`, row `rows` / column `cols` the margins.
    Equations: the columns first, then the rows (the order in which lines are completed)."""
    rows = len(cells)
    cols = len(cells[0]) if rows else 0
    if any(len(r) != cols for r in cells):
        raise ValueError("ragged table")
    if any(v < 0 for r in cells for v in r):
        raise ValueError("negative count")
    one_row = rows == 1
    values: dict[Key, int] = {}
    for i, r in enumerate(cells):
        for j, v in enumerate(r):
            values[(*tag, i, j)] = int(v)
        values[(*tag, i, cols)] = sum(int(v) for v in r)
    last = 0 if one_row else rows
    if not one_row:
        for j in range(cols + 1):
            values[(*tag, rows, j)] = sum(values[(*tag, i, j)] for i in range(rows))
    equations: list[list[tuple[Key, int]]] = []
    if not one_row:
        for j in range(cols + 1):
            equations.append([((*tag, i, j), 1) for i in range(rows)] + [((*tag, rows, j), -1)])
    for i in range(last + 1):
        equations.append([((*tag, i, j), 1) for j in range(cols)] + [((*tag, i, cols), -1)])
    margins = frozenset(e for e in values if e[-2] == rows or e[-1] == cols)
    return System(values, equations, margins), rows, cols


def _shown(withheld: set[Key], system: System, tag: tuple[int, ...], rows: int, cols: int) -> Protected:
    def shown(i: int, j: int) -> int | None:
        e = (*tag, i, j)
        return None if e in withheld else system.values[e]

    margin_row = 0 if rows == 1 else rows
    return Protected(
        cells=[[shown(i, j) for j in range(cols)] for i in range(rows)],
        row_totals=[shown(i, cols) for i in range(rows)],
        column_totals=[shown(margin_row, j) for j in range(cols)],
        total=shown(margin_row, cols),
    )


def protect(
    cells: Sequence[Sequence[int]],
    threshold: int = DEFAULT_THRESHOLD,
    *,
    forced: frozenset[Entry] = frozenset(),
) -> Protected:
    """Suppress `cells` (rows × columns of non-negative counts) with its margins. `forced` entries of the
    extended table are withheld from the start (a margin another table withheld, so that tables sharing a
    margin stay consistent, or a total not to be published yet)."""
    system, rows, cols = _table(cells)
    if rows == 0 or cols == 0:
        return Protected([list(r) for r in cells], [0] * rows, [0] * cols, 0)
    return _shown(suppress(system, threshold, frozenset(forced)), system, (), rows, cols)


def protect_linked(
    groups: Sequence[Sequence[int]],
    leaves: Sequence[Sequence[int]],
    parent: Sequence[int | None],
    threshold: int = DEFAULT_THRESHOLD,
    *,
    forced_groups: frozenset[Entry] = frozenset(),
    forced_leaves: frozenset[Entry] = frozenset(),
) -> tuple[Protected, Protected]:
    """Two linked tables protected jointly: `groups` (a row per group) and `leaves` (a row per leaf, over the
    same columns), `parent[l]` the group row of leaf `l` (None: a leaf of no published group). Each group's
    cells and total are taken as the sum of its leaves' (the worst case: a case with two leaves of one group
    counts once in the group, which only makes the sum an upper bound), so a withheld leaf is never a group
    minus its other leaves, nor a withheld group the sum of its leaves."""
    if len(parent) != len(leaves):
        raise ValueError("a parent per leaf")
    if not groups or not leaves or not groups[0]:
        return protect(groups, threshold, forced=forced_groups), protect(
            leaves, threshold, forced=forced_leaves
        )
    g, g_rows, cols = _table(groups, (0,))
    leaf, l_rows, l_cols = _table(leaves, (1,))
    if l_cols != cols:
        raise ValueError("linked tables need the same columns")
    links: list[list[tuple[Key, int]]] = []
    for k in range(g_rows):
        children = [i for i, p in enumerate(parent) if p == k]
        if not children:
            continue
        for j in range(cols + 1):
            link: list[tuple[Key, int]] = [((1, i, j), 1) for i in children]
            links.append([*link, ((0, k, j), -1)])
    system = System(
        {**g.values, **leaf.values}, [*g.equations, *leaf.equations, *links], g.margins | leaf.margins
    )
    forced = frozenset((0, *e) for e in forced_groups) | frozenset((1, *e) for e in forced_leaves)
    withheld = suppress(system, threshold, forced)
    return _shown(withheld, system, (0,), g_rows, cols), _shown(withheld, system, (1,), l_rows, cols)


def protect_counts(
    counts: dict[str, int], threshold: int = DEFAULT_THRESHOLD
) -> tuple[dict[str, int | None], int | None]:
    """A one-dimensional breakdown (key → count) and its total, under the same rule."""
    keys = list(counts)
    if not keys:
        return {}, 0
    p = protect([[counts[k] for k in keys]], threshold)
    return dict(zip(keys, p.cells[0], strict=True)), p.total
