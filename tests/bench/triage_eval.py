"""Evaluate the triage rules on the labelled texts of tests/triage_eval/.

Run:  python tests/bench/triage_eval.py [--set dev|heldout] [--verbose]

Prints, per set: top-1 and top-3 accuracy of the primary expected category, "any expected category in
top-3", urgent-flag recall and precision (per item x flag, and per flag), the false alarm rate (flags raised
on texts that do not call for them: false alarms cost trust too) and lists the misses.
Not a pytest test: tests/unit/test_triage.py holds the regression guard on the held-out set.
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))  # run from anywhere without installing the package

import yaml  # noqa: E402

from infra.triage_loader import load_triage_engine  # noqa: E402

EVAL_DIR = ROOT / "tests" / "triage_eval"
# Japanese and English, each with a development part (cues were written from it) and a held-out part.
SETS = {"dev": "ja", "heldout": "ja", "en_dev": "en", "en_heldout": "en"}
FLAGS = ("threat", "suicide", "sexual_image", "minor", "physical_danger")


@dataclass
class Report:
    name: str
    n: int = 0
    top1: int = 0
    top3: int = 0
    any3: int = 0
    tp: dict[str, int] = field(default_factory=lambda: dict.fromkeys(FLAGS, 0))
    fn: dict[str, int] = field(default_factory=lambda: dict.fromkeys(FLAGS, 0))
    fp: dict[str, int] = field(default_factory=lambda: dict.fromkeys(FLAGS, 0))
    urgent_items: int = 0
    urgent_items_caught: int = 0
    texts_with_false_alarm: int = 0
    category_misses: list[str] = field(default_factory=list)
    urgent_misses: list[str] = field(default_factory=list)
    false_alarms: list[str] = field(default_factory=list)

    @property
    def recall(self) -> float:
        tp, fn = sum(self.tp.values()), sum(self.fn.values())
        return tp / (tp + fn) if tp + fn else 1.0

    @property
    def false_alarm_rate(self) -> float:
        """Flags raised where not expected, over all (text, flag) pairs that should stay silent."""
        fp = sum(self.fp.values())
        silent = self.n * len(FLAGS) - sum(self.tp.values()) - sum(self.fn.values())
        return fp / silent if silent else 0.0

    @property
    def precision(self) -> float:
        tp, fp = sum(self.tp.values()), sum(self.fp.values())
        return tp / (tp + fp) if tp + fp else 1.0


def load_items(name: str) -> list[dict]:
    data = yaml.safe_load((EVAL_DIR / f"{name}.yaml").read_text(encoding="utf-8"))
    return data["items"]


def evaluate(name: str, items: list[dict]) -> Report:
    engine = load_triage_engine()
    rep = Report(name)
    for item in items:
        result = engine.triage(item["text"])
        ranked = [c.code for c in result.categories]
        expected = item["expected_categories"]
        primary = expected[0]
        rep.n += 1
        rep.top1 += bool(ranked[:1] == [primary])
        rep.top3 += primary in ranked[:3]
        rep.any3 += any(code in ranked[:3] for code in expected)
        if primary not in ranked[:3]:
            got3 = [f"{c.code}={c.score}" for c in result.categories[:3]]
            rep.category_misses.append(f"{item['id']}: expected {primary} got {got3}")

        want = set(item.get("urgent") or [])
        got = {f.flag for f in result.urgency}
        rep.texts_with_false_alarm += bool(got - want)
        if want:
            rep.urgent_items += 1
            rep.urgent_items_caught += bool(got)
        for flag in FLAGS:
            if flag in want and flag in got:
                rep.tp[flag] += 1
            elif flag in want:
                rep.fn[flag] += 1
                rep.urgent_misses.append(f"{item['id']}: missed {flag}")
            elif flag in got:
                rep.fp[flag] += 1
                triggers = next(f.triggers for f in result.urgency if f.flag == flag)
                rep.false_alarms.append(f"{item['id']}: false {flag} {triggers}")
    return rep


def print_report(rep: Report, verbose: bool) -> None:
    pct = lambda k: f"{k / rep.n:6.1%}" if rep.n else "   n/a"  # noqa: E731
    print(f"== {rep.name} [{SETS.get(rep.name, '?')}] ({rep.n} texts, {rep.urgent_items} urgent)")
    print(f"  category top-1 (primary)       {pct(rep.top1)}  ({rep.top1}/{rep.n})")
    print(f"  category top-3 (primary)       {pct(rep.top3)}  ({rep.top3}/{rep.n})")
    print(f"  category any expected in top-3 {pct(rep.any3)}  ({rep.any3}/{rep.n})")
    print(f"  urgent recall    (item x flag)  {rep.recall:6.1%}")
    print(f"  urgent precision (item x flag)  {rep.precision:6.1%}")
    print(f"  urgent items caught (any flag)  {rep.urgent_items_caught}/{rep.urgent_items}")
    print(f"  false alarm rate (item x flag)  {rep.false_alarm_rate:6.1%}")
    print(f"  texts with a false alarm        {rep.texts_with_false_alarm}/{rep.n}")
    for flag in FLAGS:
        print(f"    {flag:<15} tp={rep.tp[flag]:<3} fn={rep.fn[flag]:<3} fp={rep.fp[flag]}")
    for line in rep.category_misses:
        print(f"  MISS category  {line}")
    for line in rep.urgent_misses:
        print(f"  MISS urgent    {line}")
    if verbose:
        for line in rep.false_alarms:
            print(f"  false alarm    {line}")
    elif rep.false_alarms:
        print(f"  ({len(rep.false_alarms)} urgent false alarms; --verbose lists them)")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--set", choices=list(SETS), action="append")
    parser.add_argument("--verbose", action="store_true")
    args = parser.parse_args(argv)
    print(f"triage rules version {load_triage_engine().version}")
    for name in args.set or list(SETS):
        print_report(evaluate(name, load_items(name)), args.verbose)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
