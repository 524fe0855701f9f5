"""Statistical disclosure control: the one suppression rule every published figure goes through.

A table is published with its margins (row totals, column totals, the grand total), so each row and each
column of the table *extended by its margins* is a linear equation: the total equals the sum of the others.

1. Primary suppression: every entry (cell or total) with 0 < value < threshold is withheld.
2. Complementary suppression: a withheld entry must not be recoverable from the published ones. Seen as a
   graph whose vertices are the equations (the lines) and whose edges are the withheld entries (each joins the
   two lines it lies in), a withheld entry is determined by the published figures exactly when its edge is a
   bridge (it lies on no cycle): summing the equations on one side of the bridge isolates it. A line with a
   single withheld entry is the simplest case. So, until no withheld entry is a bridge, the smallest published
   entry (non-zero first, inner cells before totals) of the lines of a bridge is withheld too. Each step
   withholds one more entry, so it reaches a fixed point.

A one-dimensional table (a single row with its total) has one equation; its entries' second "line" is a
free vertex (no equation), which the same graph rule handles.

Zeros are not withheld for themselves: a zero points at nobody. They are withheld as a complement only when a
line has nothing else left to withhold.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

DEFAULT_THRESHOLD = 5
_FREE = ("free", 0)  # the vertex of a one-dimensional table's missing column equations


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


def protect(
    cells: Sequence[Sequence[int]],
    threshold: int = DEFAULT_THRESHOLD,
    *,
    forced: frozenset[Entry] = frozenset(),
) -> Protected:
    """Suppress `cells` (rows × columns of non-negative counts) with its margins. `forced` entries of the
    extended table are withheld from the start (a margin another table withheld, so that tables sharing a
    margin stay consistent)."""
    rows = len(cells)
    cols = len(cells[0]) if rows else 0
    if any(len(r) != cols for r in cells):
        raise ValueError("ragged table")
    if any(v < 0 for r in cells for v in r):
        raise ValueError("negative count")
    one_row = rows == 1
    value: dict[Entry, int] = {}
    for i, r in enumerate(cells):
        for j, v in enumerate(r):
            value[(i, j)] = int(v)
        value[(i, cols)] = sum(int(v) for v in r)
    if not one_row:
        for j in range(cols):
            value[(rows, j)] = sum(int(cells[i][j]) for i in range(rows))
        value[(rows, cols)] = sum(value[(i, cols)] for i in range(rows))
    if rows == 0 or cols == 0:
        return Protected([list(r) for r in cells], [0] * rows, [0] * cols, 0)

    withheld = {e for e, v in value.items() if 0 < v < threshold} | (set(forced) & set(value))

    def lines(e: Entry) -> tuple[tuple[str, int], tuple[str, int]]:
        i, j = e
        return ("row", i), (("col", j) if not one_row else _FREE)

    def members(line: tuple[str, int]) -> list[Entry]:
        kind, k = line
        if kind == "row":
            return [(k, j) for j in range(cols + 1)]
        if kind == "col":
            return [(i, k) for i in range(rows + 1)]
        return [(0, j) for j in range(cols + 1)]  # the free vertex touches every entry of the single row

    def is_bridge(e: Entry) -> bool:
        a, b = lines(e)
        adjacency: dict[tuple[str, int], list[tuple[str, int]]] = {}
        for other in withheld:
            if other == e:
                continue
            x, y = lines(other)
            adjacency.setdefault(x, []).append(y)
            adjacency.setdefault(y, []).append(x)
        seen, stack = {a}, [a]
        while stack:
            v = stack.pop()
            if v == b:
                return False
            for w in adjacency.get(v, []):
                if w not in seen:
                    seen.add(w)
                    stack.append(w)
        return True

    def rank(e: Entry) -> tuple[bool, int, bool, Entry]:
        margin = e[0] == rows or e[1] == cols
        return (value[e] == 0, value[e], margin, e)

    all_lines = sorted({line for e in value for line in lines(e)})
    while True:
        # A line with a single withheld entry first (complete it within that line), then any other bridge.
        single = next(
            (line for line in all_lines if sum(m in withheld for m in members(line) if m in value) == 1), None
        )
        if single is not None:
            near = {m for m in members(single) if m in value} - withheld
            if near:
                withheld.add(min(near, key=rank))
                continue
        bridge = next((e for e in sorted(withheld) if is_bridge(e)), None)
        if bridge is None:
            break
        near = {m for line in lines(bridge) for m in members(line) if m in value} - withheld
        if not near:
            # Both lines are withheld entirely: widen to every published entry of the table.
            near = set(value) - withheld
        if not near:
            break
        withheld.add(min(near, key=rank))

    def shown(e: Entry) -> int | None:
        return None if e in withheld else value[e]

    return Protected(
        cells=[[shown((i, j)) for j in range(cols)] for i in range(rows)],
        row_totals=[shown((i, cols)) for i in range(rows)],
        column_totals=[shown((rows, j)) if not one_row else shown((0, j)) for j in range(cols)],
        total=shown((rows, cols)) if not one_row else shown((0, cols)),
    )


def protect_counts(
    counts: dict[str, int], threshold: int = DEFAULT_THRESHOLD
) -> tuple[dict[str, int | None], int | None]:
    """A one-dimensional breakdown (key → count) and its total, under the same rule."""
    keys = list(counts)
    if not keys:
        return {}, 0
    p = protect([[counts[k] for k in keys]], threshold)
    return dict(zip(keys, p.cells[0], strict=True)), p.total
