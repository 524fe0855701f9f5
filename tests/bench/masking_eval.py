"""Measure the council's masking on the annotated texts of tests/masking_eval/.

Run:  python tests/bench/masking_eval.py [--set dev|heldout] [--no-analyser] [--verbose]

A gold span is every occurrence (after the masker's normalisation) of an annotated [kind, text]. It counts as
recalled when every character of it lies inside a masked span, whatever kind the masker gave that span: what
matters to the council's privacy is that nothing of it shows. A masked span is correct (precision) when it overlaps
a gold span. Recall is reported per gold kind, precision per predicted kind, and both overall.
tests/unit/test_masking_eval.py holds the regression floor on the held-out set.
"""

from __future__ import annotations

import argparse
import sys
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))  # run from anywhere without installing the package

import yaml  # noqa: E402

from domain.anonymise import KINDS, Masker, Span, normalise  # noqa: E402

EVAL_DIR = ROOT / "tests" / "masking_eval"


@dataclass
class Score:
    name: str
    texts: int = 0
    gold: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    recalled: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    predicted: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    correct: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    misses: list[str] = field(default_factory=list)
    false_alarms: list[str] = field(default_factory=list)

    @property
    def recall(self) -> float:
        return sum(self.recalled.values()) / max(1, sum(self.gold.values()))

    @property
    def precision(self) -> float:
        return sum(self.correct.values()) / max(1, sum(self.predicted.values()))


def load(name: str) -> list[dict]:  # type: ignore[type-arg]
    return yaml.safe_load((EVAL_DIR / f"{name}.yaml").read_text(encoding="utf-8"))  # type: ignore[no-any-return]


def gold_spans(text: str, annotated: list[list[str]]) -> list[Span]:
    spans = []
    for kind, value in annotated:
        needle = normalise(value)
        start = text.find(needle)
        if start < 0:
            raise ValueError(f"annotated {value!r} not in text")
        while start >= 0:
            spans.append(Span(start, start + len(needle), kind))
            start = text.find(needle, start + len(needle))
    return spans


def score(name: str, masker: Masker) -> Score:
    result = Score(name)
    for item in load(name):
        result.texts += 1
        text = normalise(item["text"])
        gold = gold_spans(text, item["spans"])
        predicted = masker.spans(text)
        covered = set()
        for p in predicted:
            covered.update(range(p.start, p.end))
        for g in gold:
            result.gold[g.kind] += 1
            if all(i in covered for i in range(g.start, g.end)):
                result.recalled[g.kind] += 1
            else:
                result.misses.append(f"{item['id']} {g.kind}: {text[g.start : g.end]}")
        for p in predicted:
            result.predicted[p.kind] += 1
            if any(p.start < g.end and g.start < p.end for g in gold):
                result.correct[p.kind] += 1
            else:
                result.false_alarms.append(f"{item['id']} {p.kind}: {text[p.start : p.end]}")
    return result


def default_masker(analyser: bool = True) -> Masker:
    if not analyser:
        return Masker()
    from infra.morphology import SudachiProperNouns

    return Masker(SudachiProperNouns())


def report(s: Score, verbose: bool) -> None:
    total_gold, total_pred = sum(s.gold.values()), sum(s.predicted.values())
    print(f"== {s.name}: {s.texts} texts, {total_gold} gold spans, {total_pred} masked spans")
    print(f"{'kind':<14}{'gold':>6}{'recall':>9}{'masked':>8}{'precision':>11}")
    for kind in KINDS:
        if not s.gold[kind] and not s.predicted[kind]:
            continue
        recall = f"{s.recalled[kind] / s.gold[kind]:.1%}" if s.gold[kind] else "-"
        precision = f"{s.correct[kind] / s.predicted[kind]:.1%}" if s.predicted[kind] else "-"
        print(f"{kind:<14}{s.gold[kind]:>6}{recall:>9}{s.predicted[kind]:>8}{precision:>11}")
    print(f"{'overall':<14}{total_gold:>6}{s.recall:>9.1%}{total_pred:>8}{s.precision:>11.1%}")
    if s.misses:
        print("missed:", *s.misses, sep="\n  ")
    if verbose and s.false_alarms:
        print("masked but not annotated:", *s.false_alarms, sep="\n  ")
    print()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--set", choices=("dev", "heldout"), action="append")
    parser.add_argument("--no-analyser", action="store_true", help="patterns only, without SudachiPy")
    parser.add_argument(
        "--verbose", action="store_true", help="also list masked spans that were not annotated"
    )
    args = parser.parse_args()
    masker = default_masker(not args.no_analyser)
    for name in args.set or ("dev", "heldout"):
        report(score(name, masker), args.verbose)


if __name__ == "__main__":
    main()
