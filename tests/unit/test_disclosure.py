"""The one suppression rule: primary cells withheld, and no withheld cell recoverable from what is published.

The property tests check the result with linear algebra (exact fractions), independently of the graph rule the
implementation uses: a withheld entry is derivable when its unit vector lies in the span of the published
equations restricted to the withheld unknowns."""

from __future__ import annotations

from fractions import Fraction

from hypothesis import given, settings
from hypothesis import strategies as st

from domain.anonymise import suppress_small
from domain.disclosure import Protected, protect, protect_counts, protect_linked
from domain.statistics import _fold

T = 5


def extended(cells: list[list[int]], p: Protected) -> tuple[dict, dict, list[list[tuple]]]:  # type: ignore[type-arg]
    """(true values, published values or None, equations as lists of entries whose signed sum is 0)."""
    rows, cols = len(cells), len(cells[0])
    one_row = rows == 1
    true: dict = {}  # type: ignore[type-arg]
    shown: dict = {}  # type: ignore[type-arg]
    for i in range(rows):
        for j in range(cols):
            true[(i, j)], shown[(i, j)] = cells[i][j], p.cells[i][j]
        true[(i, cols)], shown[(i, cols)] = sum(cells[i]), p.row_totals[i]
    if not one_row:
        for j in range(cols):
            true[(rows, j)], shown[(rows, j)] = sum(r[j] for r in cells), p.column_totals[j]
        true[(rows, cols)], shown[(rows, cols)] = sum(map(sum, cells)), p.total
    else:
        assert p.column_totals == p.cells[0] and p.total == p.row_totals[0]
    lines = []
    last_row = rows if not one_row else 0
    for i in range(last_row + 1):
        lines.append([((i, j), 1) for j in range(cols)] + [((i, cols), -1)])
    if not one_row:
        for j in range(cols + 1):
            lines.append([((i, j), 1) for i in range(rows)] + [((rows, j), -1)])
    return true, shown, lines


def derivable(shown: dict, lines: list) -> set:  # type: ignore[type-arg]
    """Withheld entries whose value the published figures determine (Gaussian elimination over Q)."""
    unknown = sorted(e for e, v in shown.items() if v is None)
    index = {e: k for k, e in enumerate(unknown)}
    matrix = []
    for line in lines:
        row = [Fraction(0)] * len(unknown)
        for e, sign in line:
            if e in index:
                row[index[e]] += sign
        if any(row):
            matrix.append(row)
    # Row-reduce; an unknown is determined iff its unit vector is in the row space.
    pivots: list[tuple[int, list[Fraction]]] = []
    for row in matrix:
        for col, prow in pivots:
            if row[col]:
                factor = row[col] / prow[col]
                row = [a - factor * b for a, b in zip(row, prow, strict=True)]
        lead = next((k for k, a in enumerate(row) if a), None)
        if lead is not None:
            for n, (col, prow) in enumerate(pivots):
                if prow[lead]:
                    factor = prow[lead] / row[lead]
                    pivots[n] = (col, [a - factor * b for a, b in zip(prow, row, strict=True)])
            pivots.append((lead, row))
    found = set()
    for col, prow in pivots:
        if sum(1 for a in prow if a) == 1:
            found.add(unknown[col])
    return found


tables = st.integers(1, 5).flatmap(
    lambda r: st.integers(1, 6).flatmap(
        lambda c: st.lists(
            st.lists(st.one_of(st.integers(0, 4), st.integers(0, 40)), min_size=c, max_size=c),
            min_size=r,
            max_size=r,
        )
    )
)


@settings(max_examples=300, deadline=None)
@given(tables)
def test_no_withheld_cell_can_be_recomputed(cells: list[list[int]]) -> None:
    p = protect(cells, T)
    true, shown, lines = extended(cells, p)
    # Primary: every entry 1..T-1 is withheld; what is shown is the truth.
    for e, v in true.items():
        if 0 < v < T:
            assert shown[e] is None, e
        if shown[e] is not None:
            assert shown[e] == v
    # Within a row or a column: never exactly one withheld entry (a total minus the rest).
    for line in lines:
        assert sum(shown[e] is None for e, _ in line) != 1, line
    # Across rows and columns together: no withheld entry is determined by the published equations.
    assert derivable(shown, lines) == set()


@settings(max_examples=200, deadline=None)
@given(
    st.lists(st.integers(0, 30), min_size=12, max_size=12),
    st.lists(st.integers(0, 30), min_size=12, max_size=12),
)
def test_quarters_from_a_protected_month_grid_reveal_no_month(a: list[int], b: list[int]) -> None:
    """The quarter view is folded from the protected months: a withheld month is never a quarter minus the
    others, and every line of the quarter view has 0 or ≥2 withheld entries."""
    p = protect([a, b], T)
    for row, truth in zip(p.cells, (a, b), strict=True):
        quarters = _fold(row, "quarter")
        for q, value in enumerate(quarters):
            months = row[3 * q : 3 * q + 3]
            if value is not None:
                assert None not in months and value == sum(truth[3 * q : 3 * q + 3])
            # The quarter is shown only when no month is withheld, so it never isolates one.
            assert value is None or all(m is not None for m in months)


def test_one_person_recognised_through_a_total_is_not() -> None:
    """April: eleven consultations from the web form and one from LINE. Publishing web 11 next to the month's
    total 12 would say that exactly one person used LINE in April — and the month, channel and relation of a
    single case are enough to point at them. The LINE count is withheld and so is what would recompute it."""
    cells = [[11, 20], [1, 9], [0, 7]]  # rows web, line, chatbot; columns April, May
    p = protect(cells, T)
    true, shown, lines = extended(cells, p)
    assert p.cells[1][0] is None
    assert derivable(shown, lines) == set()
    # No published subtraction gives the 1 back: the April column and the LINE row each withhold another.
    assert sum(v is None for v in (p.cells[0][0], p.cells[2][0], p.column_totals[0])) >= 1
    assert sum(v is None for v in (p.cells[1][1], p.row_totals[1])) >= 1


def test_small_totals_are_withheld_and_zeros_shown() -> None:
    p = protect([[2, 0], [1, 0]], T)
    assert p.total is None and p.column_totals[0] is None
    assert p.cells[0][1] == 0 and p.column_totals[1] == 0


def test_a_breakdown_and_the_council_counts_use_the_same_rule() -> None:
    counts = {"submitted": 6, "in_progress": 1}
    assert protect_counts(counts, T) == ({"submitted": None, "in_progress": None}, 7)
    assert suppress_small(counts) == protect_counts(counts, T)[0]
    assert protect_counts({"a": 10, "b": 3, "c": 7, "d": 0}, T) == (
        {"a": 10, "b": None, "c": None, "d": 0},
        20,
    )


def test_forced_margins_are_withheld_with_their_complements() -> None:
    p = protect([[10, 12], [9, 8]], T, forced=frozenset({(2, 0)}))
    true, shown, lines = extended([[10, 12], [9, 8]], p)
    assert p.column_totals[0] is None and derivable(shown, lines) == set()


hierarchies = st.integers(1, 3).flatmap(
    lambda groups: st.integers(1, 4).flatmap(
        lambda cols: st.tuples(
            st.lists(st.integers(0, groups - 1), min_size=groups, max_size=groups + 3),
            st.lists(
                st.lists(st.one_of(st.integers(0, 3), st.integers(0, 30)), min_size=cols, max_size=cols),
                min_size=groups + 3,
                max_size=groups + 3,
            ),
            st.just(groups),
        )
    )
)


def _linked_check(groups: int, parent: list[int], leaves: list[list[int]]) -> tuple[set, list[list[int]]]:  # type: ignore[type-arg]
    from tests.disclosure_check import determined, linked_equations, table_equations

    group_cells = [
        [sum(leaves[i][j] for i, p in enumerate(parent) if p == g) for j in range(len(leaves[0]))]
        for g in range(groups)
    ]
    pg, pl = protect_linked(group_cells, leaves, parent, T)
    shown: dict = {}  # type: ignore[type-arg]
    equations: list = []  # type: ignore[type-arg]
    for name, p, n in (("g", pg, groups), ("l", pl, len(leaves))):
        rows = {str(i): [*p.cells[i], p.row_totals[i]] for i in range(n)}
        s, e = table_equations(name, rows, [*p.column_totals, p.total])
        shown.update(s)
        equations += e
    equations += linked_equations(
        "g",
        "l",
        {str(i): str(p) for i, p in enumerate(parent)},
        [str(g) for g in range(groups)],
        [str(i) for i in range(len(leaves))],
        len(leaves[0]) + 1,
    )
    for i, line in enumerate(leaves):
        for j, v in enumerate(line):
            if 0 < v < T:
                assert pl.cells[i][j] is None
            assert pl.cells[i][j] in (None, v)
    return determined(shown, equations), group_cells


@settings(max_examples=150, deadline=None)
@given(hierarchies)
def test_linked_tables_reveal_no_withheld_cell_jointly(case: tuple[list[int], list[list[int]], int]) -> None:
    """Groups over leaves: the group table and the leaf table together, with "group = sum of its leaves" for
    every column and the totals, determine no withheld figure of either."""
    parent, leaves, groups = case
    leaves = leaves[: len(parent)]
    found, _ = _linked_check(groups, parent, leaves)
    assert found == set()


def test_a_leaf_is_not_a_group_total_minus_its_other_leaves() -> None:
    """One person in a small category of a large group: rights 11 in April, defamation 10, privacy 1. Each
    table protected alone shows defamation 10 (the privacy cell's complement is the youth leaf, the smallest in
    its column) and the group's 11: 11 − 10 = 1. Protected jointly, the subtraction is never available."""
    leaves = [[10, 20], [1, 0], [6, 9]]  # defamation, privacy (rights); bullying (youth); April, May
    parent = [0, 0, 1]
    groups = [[11, 20], [6, 9]]
    alone_groups, alone_leaves = protect(groups, T), protect(leaves, T)
    assert (
        alone_leaves.cells[1][0] is None and alone_leaves.cells[0][0] == 10 and alone_groups.cells[0][0] == 11
    )
    found, _ = _linked_check(2, parent, leaves)
    assert found == set()
    pg, pl = protect_linked(groups, leaves, parent, T)
    assert pl.cells[1][0] is None and None in (pg.cells[0][0], pl.cells[0][0])
