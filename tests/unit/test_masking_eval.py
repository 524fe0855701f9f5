"""The council masking's regression floor on the annotated evaluation set (tests/masking_eval/). The held-out
texts were written before the rules and never used to tune them; tests/bench/masking_eval.py prints the full
report per kind. Floors are the figures reached when they were set, so a change that loses spans fails here."""

from __future__ import annotations

import pytest

from domain.anonymise import KINDS, Masker, normalise
from infra.morphology import SudachiProperNouns
from tests.bench.masking_eval import gold_spans, load, score

HELDOUT_RECALL_FLOOR = 0.985  # 164 of 166 spans (98.8 %) when set
HELDOUT_PRECISION_FLOOR = 0.95  # 97.5 % when set
DEV_RECALL_FLOOR = 1.0  # 397 of 397 spans when set


@pytest.fixture(scope="module")
def masker() -> Masker:
    return Masker(SudachiProperNouns())


def test_the_evaluation_set_is_large_annotated_and_consistent() -> None:
    dev, heldout = load("dev"), load("heldout")
    assert len(dev) + len(heldout) >= 120 and len(heldout) >= 40
    ids = [item["id"] for item in dev + heldout]
    assert len(ids) == len(set(ids))
    for item in dev + heldout:
        assert item["spans"], item["id"]
        assert all(kind in KINDS for kind, _ in item["spans"]), item["id"]
        gold_spans(normalise(item["text"]), item["spans"])  # every annotated span is in its text


def test_heldout_recall_and_precision_floor(masker: Masker) -> None:
    result = score("heldout", masker)
    assert result.recall >= HELDOUT_RECALL_FLOOR, result.misses
    assert result.precision >= HELDOUT_PRECISION_FLOOR, result.false_alarms


def test_dev_recall_floor(masker: Masker) -> None:
    result = score("dev", masker)
    assert result.recall >= DEV_RECALL_FLOOR, result.misses
