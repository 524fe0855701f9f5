"""Loads domain/knowledge/triage.yaml, and its language packs triage.<language>.yaml, into the (stdlib-only)
triage engine.

YAML parsing lives here, not in domain/, so the domain stays free of third-party imports. The shape of each
file is the pydantic schema below (unknown keys are refused); it builds the domain's rule objects. What a
schema cannot say (an urgency rule naming a category or flag that does not exist) is
domain/triage.reference_problems. A language pack adds phrases (cues, negative cues, urgency cues,
patterns, unless/unless_not, escalations) to the codes and flags of the main file; it cannot add a code, a
flag, a desk or a guide, so every language routes to the same desks.
"""

from __future__ import annotations

import copy
import re
from dataclasses import fields
from functools import lru_cache
from importlib import resources
from typing import Annotated, Any

from pydantic import (
    AfterValidator,
    Field,
    StringConstraints,
    ValidationError,
    model_validator,
)

from domain.triage import (
    CATEGORY_CODE,
    SLUG,
    CategoryRule,
    Escalation,
    Scoring,
    TriageRules,
    TriageRulesError,
    UrgencyRule,
    cues,
    normalise,
    reference_problems,
    weighted_cues,
)
from infra.yaml_data import Schema, load_yaml, schema_problems

_PACKAGE = "domain.knowledge"
_FILE = "triage.yaml"
_PACK = re.compile(r"^triage\.([a-z]{2,3})\.yaml$")


def _phrase(value: str) -> str:
    if not normalise(value):
        raise ValueError("empty phrase")
    return value


def _pattern(value: str) -> str:
    try:
        # Patterns run on normalised text, so authors write ASCII digits; the pattern itself is not
        # normalised because NFKC and the dash rule would corrupt ranges such as [ぁ-ん].
        compiled = re.compile(value)
    except re.error as exc:
        raise ValueError(f"invalid pattern {value!r}: {exc}") from None
    if compiled.search(""):
        raise ValueError(f"pattern {value!r} matches the empty string")
    return value


def _unique(values: list[str]) -> list[str]:
    if len(set(values)) != len(values):
        raise ValueError("duplicate codes")
    return values


Phrase = Annotated[str, AfterValidator(_phrase)]
Phrases = Annotated[list[Phrase], Field(min_length=1)]
Pattern = Annotated[str, AfterValidator(_pattern)]
Slug = Annotated[str, StringConstraints(pattern=SLUG)]
Slugs = Annotated[list[Slug], AfterValidator(_unique)]
SomeSlugs = Annotated[list[Slug], Field(min_length=1), AfterValidator(_unique)]
Weight = Annotated[float, Field(gt=0, le=10)]
WeightedPhrases = Annotated[dict[Weight, Phrases], Field(min_length=1)]
Code = Annotated[str, StringConstraints(pattern=CATEGORY_CODE)]


class ScoringDoc(Schema):
    """Every key optional: the defaults are domain/triage.Scoring's."""

    top_k: Annotated[int, Field(ge=0)] | None = None
    fuzzy_min_coverage: Annotated[float, Field(ge=0)] | None = None
    fuzzy_factor: Annotated[float, Field(ge=0)] | None = None
    fuzzy_min_grams: Annotated[int, Field(ge=0)] | None = None
    urgency_fuzzy_min_coverage: Annotated[float, Field(ge=0)] | None = None
    fuzzy_min_piece_ratio: Annotated[float, Field(ge=0)] | None = None
    urgency_category_min_score: Annotated[float, Field(ge=0)] | None = None
    max_triggers: Annotated[int, Field(ge=0)] | None = None

    def model(self) -> Scoring:
        kinds = {f.name: type(getattr(Scoring(), f.name)) for f in fields(Scoring)}
        return Scoring(**{k: kinds[k](v) for k, v in self.model_dump(exclude_none=True).items()})


class FallbackDoc(Schema):
    desks: Slugs = []
    guides: Slugs = []


class CategoryDoc(Schema):
    label: str = ""
    cues: WeightedPhrases
    negative: WeightedPhrases | None = None
    desks: SomeSlugs
    guides: Slugs = []

    def model(self, code: str) -> CategoryRule:
        return CategoryRule(
            code=code,
            label=self.label,
            cues=weighted_cues(self.cues),
            negative=weighted_cues(self.negative) if self.negative else (),
            desks=tuple(self.desks),
            guides=tuple(self.guides),
        )


class EscalationDoc(Schema):
    cues: Phrases | None = None
    patterns: list[Pattern] = []
    when_flags: Slugs = []
    desks: SomeSlugs

    @model_validator(mode="after")
    def _has_a_trigger(self) -> EscalationDoc:
        if not (self.cues or self.patterns or self.when_flags):
            raise ValueError("needs cues, patterns or when_flags")
        return self

    def model(self) -> Escalation:
        return Escalation(
            cues=cues(self.cues or ()),
            patterns=tuple(re.compile(p) for p in self.patterns),
            when_flags=tuple(self.when_flags),
            desks=tuple(self.desks),
        )


class UrgencyDoc(Schema):
    label: str = ""
    cues: Phrases
    patterns: list[Pattern] = []
    categories: list[str] = []
    desks: SomeSlugs
    guides: Slugs = []
    escalations: list[EscalationDoc] = []
    unless: Phrases | None = None
    unless_not: Phrases | None = None

    @model_validator(mode="after")
    def _unless_comes_in_pairs(self) -> UrgencyDoc:
        if (self.unless is None) != (self.unless_not is None):
            raise ValueError("unless needs unless_not (what keeps the flag), and the other way round")
        return self

    def model(self, flag: str) -> UrgencyRule:
        return UrgencyRule(
            flag=flag,
            label=self.label,
            cues=cues(self.cues),
            patterns=tuple(re.compile(p) for p in self.patterns),
            categories=tuple(self.categories),
            desks=tuple(self.desks),
            guides=tuple(self.guides),
            escalations=tuple(e.model() for e in self.escalations),
            unless=cues(self.unless or ()),
            unless_not=cues(self.unless_not or ()),
        )


class RulesDoc(Schema):
    version: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1)] | int
    scoring: ScoringDoc = ScoringDoc()
    fallback: FallbackDoc = FallbackDoc()
    categories: Annotated[dict[Code, CategoryDoc], Field(min_length=1)]
    urgency: Annotated[dict[Slug, UrgencyDoc], Field(min_length=1)]

    def model(self) -> TriageRules:
        categories = tuple(body.model(code) for code, body in self.categories.items())
        urgency = tuple(body.model(flag) for flag, body in self.urgency.items())
        problems = reference_problems(categories, urgency)
        if problems:
            raise TriageRulesError([f"{_FILE}: {p}" for p in problems])
        return TriageRules(
            str(self.version),
            categories,
            urgency,
            tuple(self.fallback.desks),
            tuple(self.fallback.guides),
            self.scoring.model(),
        )


# -- language packs ---------------------------------------------------------------------------------------


class PackCategoryDoc(Schema):
    cues: WeightedPhrases | None = None
    negative: WeightedPhrases | None = None


class PackUrgencyDoc(Schema):
    cues: Phrases | None = None
    patterns: list[Pattern] | None = None
    unless: Phrases | None = None
    unless_not: Phrases | None = None
    escalations: list[EscalationDoc] | None = None


class PackDoc(Schema):
    language: Annotated[str, StringConstraints(pattern=r"^[a-z]{2,3}$")]
    categories: dict[str, PackCategoryDoc] = {}
    urgency: dict[str, PackUrgencyDoc] = {}


def _validated(model: type[Schema], raw: Any, file: str) -> Any:
    try:
        return model.model_validate(raw)
    except ValidationError as exc:
        raise TriageRulesError(schema_problems(exc, file, raw)) from None


def merge_language_pack(rules: dict[str, Any], pack: Any) -> dict[str, Any]:
    """The rules with the pack's phrases added. Raises TriageRulesError for a code, flag or key the rules
    lack."""
    language = pack.get("language") if isinstance(pack, dict) else None
    file = f"triage.{language}.yaml" if isinstance(language, str) else "triage language pack"
    doc: PackDoc = _validated(PackDoc, pack, file)
    problems = [
        f"{file}: categories: unknown category {c!r}" for c in doc.categories if c not in rules["categories"]
    ]
    problems += [f"{file}: urgency: unknown flag {f!r}" for f in doc.urgency if f not in rules["urgency"]]
    if problems:
        raise TriageRulesError(problems)
    out = copy.deepcopy(rules)
    additions = doc.model_dump(exclude_none=True)
    for code, body in additions["categories"].items():
        target = out["categories"][code]
        for key, weighted in body.items():
            merged = target.setdefault(key, {})
            for weight, phrases in weighted.items():
                merged[weight] = [*(merged.get(weight) or []), *phrases]
    for flag, body in additions["urgency"].items():
        target = out["urgency"][flag]
        for key, items in body.items():
            target[key] = [*(target.get(key) or []), *items]
    return out


def rules_from_dict(raw: Any) -> TriageRules:
    """Validate the parsed YAML and build the rules. Raises TriageRulesError naming the file and the place."""
    doc: RulesDoc = _validated(RulesDoc, raw, _FILE)
    return doc.model()


def load_triage_rules_text(text: str, packs: list[str] | tuple[str, ...] = ()) -> TriageRules:
    """Parse and validate rules given as YAML text, with language packs as YAML texts (tests, and a future
    staff editor)."""
    raw = load_yaml(text)
    if (
        not isinstance(raw, dict)
        or not isinstance(raw.get("categories"), dict)
        or not isinstance(raw.get("urgency"), dict)
    ):
        return rules_from_dict(raw)  # refused, with the reasons, before any pack is merged
    for pack in packs:
        raw = merge_language_pack(raw, load_yaml(pack))
    return rules_from_dict(raw)


def pack_texts() -> list[str]:
    """The packaged language packs, in name order."""
    root = resources.files(_PACKAGE)
    names = sorted(r.name for r in root.iterdir() if _PACK.match(r.name))
    return [root.joinpath(n).read_text(encoding="utf-8") for n in names]


@lru_cache(maxsize=1)
def load_triage_engine() -> TriageRules:
    """The packaged rules with every language pack, parsed once per process. Raises ValueError
    (TriageRulesError) when a file is malformed."""
    # importlib.resources reads from the installed package (wheel, zip or source tree) alike.
    text = resources.files(_PACKAGE).joinpath(_FILE).read_text(encoding="utf-8")
    return load_triage_rules_text(text, pack_texts())


__all__ = [
    "load_triage_engine",
    "load_triage_rules_text",
    "merge_language_pack",
    "pack_texts",
    "rules_from_dict",
]
