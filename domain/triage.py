"""Triage of a consultation's free text: likely categories, urgency flags, desks and guides.

Standard library only (domain rule). The rules are data (domain/knowledge/triage.yaml, parsed by
infra/triage_loader.py against a pydantic schema, which builds the rule objects below); this module checks
what a schema cannot (`reference_problems`) and applies them.

How a text is scored, per category:
  * exact cue phrases found in the normalised text add their weight;
  * cues that are not found verbatim but share most of their character 2-/3-grams with the text add a
    discounted share of their weight, so a phrasing nobody wrote a cue for ("住所をさらされ" for "住所を晒す")
    still scores;
  * negative cues subtract their weight.
Urgency is deliberately high-recall: a flag is raised by any cue, regex pattern, near-match of a cue, or a
strongly scored linked category. A false alarm costs a staff member a glance; a missed threat or suicide
note can cost a life.

Triggers are always substrings of `normalise(text)`, never the whole text, so they can be shown to staff
and highlighted without echoing the narrative.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

__all__ = [
    "CATEGORY_CODE",
    "MAX_TEXT_CHARS",
    "SLUG",
    "CategoryRule",
    "CategorySuggestion",
    "Cue",
    "Escalation",
    "Scoring",
    "TriageResult",
    "TriageRules",
    "TriageRulesError",
    "UrgencyFlag",
    "UrgencyRule",
    "cues",
    "normalise",
    "reference_problems",
    "weighted_cues",
]

# The intake form and the chatbot cap narratives well below this; the cap bounds CPU per request.
MAX_TEXT_CHARS = 4000

# The shapes of a category code and of a desk, guide or flag slug (checked by infra/triage_loader.py).
CATEGORY_CODE = r"^[A-Z]+\.[A-Z_]+$"
SLUG = r"^[a-z0-9]+(?:[-_][a-z0-9]+)*$"

# ---------------------------------------------------------------------------------------------------------
# Normalisation
# ---------------------------------------------------------------------------------------------------------

# People type the long-vowel mark with whatever dash their keyboard offers (メ－ル, メ―ル, ﾒｰﾙ, メ~ル).
_DASHES = "-‐‑‒–—―−－ｰ﹣"
_WAVES = "~〜～∼"
_ZERO_WIDTH: dict[int, int | None] = dict.fromkeys(map(ord, "\u200b\u200c\u200d\u2060\ufeff"), None)
# Phones type curly apostrophes (don’t, I’m): match them as the plain one the English cues are written with.
_ZERO_WIDTH.update(dict.fromkeys(map(ord, "\u2018\u2019\u02bc\uff07"), ord("'")))
_AFTER_KANA_DASH_RE = re.compile(f"(?<=[\u30a1-\u30fa\u30fc\u3041-\u3096])[{re.escape(_DASHES + _WAVES)}]")
_WAVE_RE = re.compile(f"[{re.escape(_WAVES)}]")
_SPACE_RE = re.compile(r"\s+")


def normalise(text: str) -> str:
    """NFKC, lower-case latin, plain apostrophes, one long-vowel mark, single spaces, stripped. Japanese is kept as
    is. Only for matching: the text itself is never changed or stored."""
    s = unicodedata.normalize("NFKC", text).translate(_ZERO_WIDTH).lower()
    s = _AFTER_KANA_DASH_RE.sub("ー", s)
    s = _WAVE_RE.sub("〜", s)
    return _SPACE_RE.sub(" ", s).strip()


_KATAKANA_TO_HIRAGANA = {c: c - 0x60 for c in range(0x30A1, 0x30F7)}


def _fold_kana(s: str) -> str:
    """Katakana → hiragana, one character for one, so indices into the folded text are indices into `s`.

    Lets ころす match コロス and ﾘﾍﾞﾝｼﾞﾎﾟﾙﾉ match りべんじぽるの without a cue for every spelling.
    """
    return s.translate(_KATAKANA_TO_HIRAGANA)


def _is_hiragana(c: str) -> bool:
    return "\u3041" <= c <= "\u309f" or c == "ー"


def _is_content(c: str) -> bool:
    # Punctuation, symbols (emoji) and spaces carry no meaning for similarity.
    return unicodedata.category(c)[0] not in "PSZC"


def _grams(s: str, key: str, *, cue: bool = False) -> set[str]:
    """Character 2- and 3-grams of `key` (the folded form of `s`) used for similarity.

    Grams made only of hiragana (され, ている, ます…) occur in almost every sentence and would make any two
    texts look alike. Hiragana bigrams are dropped everywhere; a cue keeps hiragana trigrams only when it has
    nothing else (ころす), while a text keeps them so such cues can still be found.
    """
    # Each character's two properties looked up once, not once per gram it is part of (a text of 200
    # characters has ~400 grams; the Unicode lookups were most of the cost of preparing it).
    content = [_is_content(c) for c in s]
    hiragana = [_is_hiragana(c) for c in s]
    out: set[str] = set()
    kana_only: set[str] = set()
    for i in range(len(s) - 1):
        if not (content[i] and content[i + 1]):
            continue
        if not (hiragana[i] and hiragana[i + 1]):
            out.add(key[i : i + 2])
    for i in range(len(s) - 2):
        if not (content[i] and content[i + 1] and content[i + 2]):
            continue
        if hiragana[i] and hiragana[i + 1] and hiragana[i + 2]:
            kana_only.add(key[i : i + 3])
        else:
            out.add(key[i : i + 3])
    if not cue or not out:
        out |= kana_only
    return out


# ---------------------------------------------------------------------------------------------------------
# Results
# ---------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class CategorySuggestion:
    code: str
    score: float
    triggers: list[str]


@dataclass(frozen=True)
class UrgencyFlag:
    flag: str
    triggers: list[str]
    desk_codes: list[str]


@dataclass(frozen=True)
class TriageResult:
    categories: list[CategorySuggestion]
    urgency: list[UrgencyFlag]
    desk_codes: list[str]
    guide_slugs: list[str]
    rules_version: str = ""

    @property
    def is_urgent(self) -> bool:
        return bool(self.urgency)


# ---------------------------------------------------------------------------------------------------------
# Rules
# ---------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Cue:
    phrase: str
    key: str
    weight: float
    grams: frozenset[str]

    @classmethod
    def build(cls, raw_phrase: str, weight: float) -> Cue:
        phrase = normalise(raw_phrase)
        key = _fold_kana(phrase)
        return cls(phrase, key, weight, frozenset(_grams(phrase, key, cue=True)))


@dataclass(frozen=True)
class CategoryRule:
    code: str
    label: str
    cues: tuple[Cue, ...]
    negative: tuple[Cue, ...]
    desks: tuple[str, ...]
    guides: tuple[str, ...]


@dataclass(frozen=True)
class Escalation:
    cues: tuple[Cue, ...]
    patterns: tuple[re.Pattern[str], ...]
    when_flags: tuple[str, ...]
    desks: tuple[str, ...]


@dataclass(frozen=True)
class UrgencyRule:
    flag: str
    label: str
    cues: tuple[Cue, ...]
    patterns: tuple[re.Pattern[str], ...]
    categories: tuple[str, ...]
    desks: tuple[str, ...]
    guides: tuple[str, ...]
    escalations: tuple[Escalation, ...]
    # False alarms cost trust too: when the text reads as another situation (`unless`: a one-click bill on
    # an adult site, hate speech quoting 「殺せ」 about a group) and shows nothing of the person's own danger
    # (`unless_not`), the flag's text triggers are dropped. A category the person chose still raises it.
    unless: tuple[Cue, ...] = ()
    unless_not: tuple[Cue, ...] = ()


@dataclass(frozen=True)
class Scoring:
    top_k: int = 5
    # A cue counts as a near-match when this share of its grams appears in the text…
    fuzzy_min_coverage: float = 0.6
    # …and then adds this fraction of (weight × coverage). Exact phrases must dominate.
    fuzzy_factor: float = 0.5
    # Cues with fewer grams than this never near-match (short cues would match by accident).
    fuzzy_min_grams: int = 3
    # Urgency near-matches need a higher coverage than category ones.
    urgency_fuzzy_min_coverage: float = 0.8
    # …and only if the longest piece of the cue found verbatim is at least this share of the cue, so that
    # 拡散された (defamation) does not near-match 拡散されたくなければ (sextortion) on its kanji alone.
    fuzzy_min_piece_ratio: float = 0.5
    # A linked category raises its urgency flag from this score up.
    urgency_category_min_score: float = 2.0
    max_triggers: int = 8


class _CueIndex:
    """Every cue of a rule set, indexed once: by the first two characters of its folded form (a cue found in a
    text, verbatim or kana-folded, starts with a pair of characters of the folded text) and by its grams (a
    cue near-matches a text only when the text has `min_coverage` of its grams). A text then tries the few
    dozen cues it can match instead of all 1,600 (that was 5 ms a text, a fifth of an intake's CPU). The
    results are those of trying every cue: the index only leaves out cues that cannot match."""

    __slots__ = ("heads", "gram_cues", "sizes", "min_coverage")

    def __init__(self, all_cues: Iterable[Cue], min_coverage: float) -> None:
        self.heads: dict[str, list[Cue]] = {}
        self.gram_cues: dict[str, list[int]] = {}
        # id() of each indexed cue (the rules hold them, so the ids stay theirs) → its number of grams.
        self.sizes: dict[int, int] = {}
        self.min_coverage = min_coverage
        for cue in all_cues:
            # A cue built by hand whose key is not its folded phrase is tried the long way.
            if id(cue) in self.sizes or cue.key != _fold_kana(cue.phrase):
                continue
            self.sizes[id(cue)] = len(cue.grams)
            if cue.key:
                self.heads.setdefault(cue.key[:2], []).append(cue)
            for gram in cue.grams:
                self.gram_cues.setdefault(gram, []).append(id(cue))

    def slots(self, rules: Sequence[tuple[Cue, ...]]) -> _RuleCues:
        return _RuleCues(rules, [all(id(c) in self.sizes for c in cues) for cues in rules])


class _RuleCues:
    """The cue lists of several rules (one per category, or per urgency flag) and where each cue sits in them."""

    __slots__ = ("rules", "indexed", "where")

    def __init__(self, rules: Sequence[tuple[Cue, ...]], indexed: list[bool]) -> None:
        self.rules = rules
        # Per rule, whether all its cues are indexed: only then may it be walked through the candidates alone.
        self.indexed = indexed
        # cue id → [(rule, position)]
        self.where: dict[int, list[tuple[int, int]]] = {}
        for r, cues in enumerate(rules):
            for position, cue in enumerate(cues):
                self.where.setdefault(id(cue), []).append((r, position))


class _Text:
    """A text prepared once for all lookups."""

    __slots__ = ("norm", "key", "grams", "_index", "_found", "_shared", "candidates")

    def __init__(self, text: str, index: _CueIndex | None = None) -> None:
        # Truncate before and after NFKC: the first bounds the work, the second the expansion (㍻ → 平成).
        self.norm = normalise(text[:MAX_TEXT_CHARS])[:MAX_TEXT_CHARS]
        self.key = _fold_kana(self.norm)
        self.grams = _grams(self.norm, self.key)
        self._index = index
        # Per indexed cue: what `exact` finds (only cues found are kept) and how many of its grams the text has.
        self._found: dict[int, str] = {}
        self._shared: dict[int, int] = {}
        # The indexed cues that may match (found, or with enough shared grams to near-match); None: any may.
        self.candidates: set[int] | None = None
        if index is None:
            return
        key = self.key
        heads = {key[i : i + 2] for i in range(len(key) - 1)}
        heads.update(key)
        for head in heads:
            for cue in index.heads.get(head, ()):
                found = self._find(cue)
                if found is not None:
                    self._found[id(cue)] = found
        shared = self._shared
        for gram in self.grams:
            for cue_id in index.gram_cues.get(gram, ()):
                shared[cue_id] = shared.get(cue_id, 0) + 1
        if index.min_coverage > 0:  # at 0 a cue sharing nothing near-matches too
            sizes, least = index.sizes, index.min_coverage
            self.candidates = set(self._found)
            self.candidates.update(c for c, n in shared.items() if n / sizes[c] >= least)

    def cues_to_try(self, rule_cues: _RuleCues) -> list[Sequence[Cue]]:
        """Per rule, the cues to try on this text, in the rule's order (scores are summed and triggers ranked
        in that order): its candidates, every other cue finding nothing; all of them without an index."""
        if self.candidates is None:
            return list(rule_cues.rules)
        positions: dict[int, list[int]] = {}
        for cue_id in self.candidates:
            for r, position in rule_cues.where.get(cue_id, ()):
                positions.setdefault(r, []).append(position)
        return [
            [cues[p] for p in sorted(positions.get(r, ()))] if rule_cues.indexed[r] else cues
            for r, cues in enumerate(rule_cues.rules)
        ]

    def exact(self, cue: Cue) -> str | None:
        if self._index is not None and id(cue) in self._index.sizes:
            return self._found.get(id(cue))
        return self._find(cue)

    def _find(self, cue: Cue) -> str | None:
        if not cue.key:
            return None
        i = self.norm.find(cue.phrase)
        if i < 0 and len(cue.key) >= 3:
            # Kana-folded match only for cues of 3+ characters: folded, a two-kana cue like エロ would match
            # inside 消えろ.
            i = self.key.find(cue.key)
        return None if i < 0 else self.norm[i : i + len(cue.key)]

    def near(self, cue: Cue, min_coverage: float, sc: Scoring) -> tuple[float, str] | None:
        if len(cue.grams) < sc.fuzzy_min_grams:
            return None
        if cue.key.isascii():
            # Latin-script cues (English) are spelled alike by everyone; near-matching them on character
            # grams only finds other words ("video" for "video call", "can't" for "can't go on").
            return None
        if self._index is not None and id(cue) in self._index.sizes:
            shared = self._shared.get(id(cue), 0)
        else:
            shared = sum(1 for g in cue.grams if g in self.grams)
        coverage = shared / len(cue.grams)
        if coverage < min_coverage:
            return None
        piece = self._longest_shared(cue.key)
        if len(piece) < sc.fuzzy_min_piece_ratio * len(cue.key):
            return None
        return coverage, piece

    def _longest_shared(self, key: str) -> str:
        # The longest piece of the cue that occurs in the text, reported as the user's own characters.
        for length in range(len(key), 1, -1):
            for start in range(len(key) - length + 1):
                piece = key[start : start + length]
                if all(_is_hiragana(c) for c in piece):
                    continue
                i = self.key.find(piece)
                if i >= 0:
                    return self.norm[i : i + length]
        return ""

    def pattern(self, pattern: re.Pattern[str]) -> str | None:
        # Patterns are tried on the normalised and on the kana-folded text (same indices) so a rule author
        # can write either スクショ or すくしょ.
        for haystack in (self.norm, self.key):
            m = pattern.search(haystack)
            if m and m.end() > m.start():
                return self.norm[m.start() : m.end()]
        return None


class TriageRules:
    """Validated triage rules; `triage(text)` and `detect_urgency(text)` apply them. Immutable once built."""

    def __init__(
        self,
        version: str,
        categories: tuple[CategoryRule, ...],
        urgency: tuple[UrgencyRule, ...],
        fallback_desks: tuple[str, ...],
        fallback_guides: tuple[str, ...],
        scoring: Scoring,
    ) -> None:
        self.version = version
        self._categories = categories
        self._urgency = urgency
        self._fallback_desks = fallback_desks
        self._fallback_guides = fallback_guides
        self._scoring = scoring
        every_cue = [cue for c in categories for cue in (*c.cues, *c.negative)]
        for u in urgency:
            every_cue += [*u.cues, *u.unless, *u.unless_not, *(cue for e in u.escalations for cue in e.cues)]
        self._index = _CueIndex(
            every_cue, min(scoring.fuzzy_min_coverage, scoring.urgency_fuzzy_min_coverage)
        )
        # Where each cue sits in the categories' and the urgency rules' cue lists: a text walks only the
        # candidates, in the rules' order (scores are summed and triggers ranked in that order).
        self._category_cues = self._index.slots([c.cues for c in categories])
        self._urgency_cues = self._index.slots([u.cues for u in urgency])

    # -- introspection (used to cross-check against desks.yaml and categories.yaml) -------------------

    @property
    def category_codes(self) -> list[str]:
        return [c.code for c in self._categories]

    @property
    def urgency_flags(self) -> list[str]:
        return [u.flag for u in self._urgency]

    def referenced_desk_codes(self) -> set[str]:
        out = set(self._fallback_desks)
        for c in self._categories:
            out.update(c.desks)
        for u in self._urgency:
            out.update(u.desks)
            for e in u.escalations:
                out.update(e.desks)
        return out

    def referenced_guide_slugs(self) -> set[str]:
        out = set(self._fallback_guides)
        for c in self._categories:
            out.update(c.guides)
        for u in self._urgency:
            out.update(u.guides)
        return out

    # -- use ---------------------------------------------------------------------------------------------

    def triage(self, text: str) -> TriageResult:
        prepared = _Text(text, self._index)
        scored = self._score_categories(prepared)
        ranked = sorted(
            (s for s in scored if s.score > 0),
            key=lambda s: -s.score,  # sorted() is stable, so ties keep the YAML order
        )[: self._scoring.top_k]
        flags = self._detect(prepared, scored)

        by_code = {c.code: c for c in self._categories}
        desks: list[str] = []
        guides: list[str] = []
        for f in flags:
            _extend_unique(desks, f.desk_codes)
        for u in self._urgency:
            if any(f.flag == u.flag for f in flags):
                _extend_unique(guides, u.guides)
        for s in ranked:
            _extend_unique(desks, by_code[s.code].desks)
            _extend_unique(guides, by_code[s.code].guides)
        if not ranked:
            _extend_unique(desks, self._fallback_desks)
            _extend_unique(guides, self._fallback_guides)
        return TriageResult(ranked, flags, desks, guides, self.version)

    def detect_urgency(
        self, text: str, *, categories: Sequence[str] = (), facts: Mapping[str, str] = {}
    ) -> list[UrgencyFlag]:
        """Urgency flags for the intake of a consultation: from its narrative, from the categories the person
        chose (a chosen category raises its flag outright), and from facts such as {"minor": "victim_is_minor"}
        (flag → the trigger to report)."""
        prepared = _Text(text, self._index)
        forced: dict[str, list[str]] = {flag: [trigger] for flag, trigger in facts.items()}
        for rule in self._urgency:
            for code in categories:
                if code in rule.categories:
                    forced.setdefault(rule.flag, []).append(code)
        return self._detect(prepared, self._score_categories(prepared), forced)

    # -- internals -------------------------------------------------------------------------------------

    def _score_categories(self, t: _Text) -> list[CategorySuggestion]:
        sc = self._scoring
        out = []
        walk = t.cues_to_try(self._category_cues)
        for cat, cues_to_try in zip(self._categories, walk, strict=True):
            score = 0.0
            hits: list[tuple[float, str]] = []
            for cue in cues_to_try:
                found = t.exact(cue)
                if found is not None:
                    score += cue.weight
                    hits.append((cue.weight, found))
                    continue
                near = t.near(cue, sc.fuzzy_min_coverage, sc)
                if near is not None:
                    coverage, piece = near
                    gain = cue.weight * coverage * sc.fuzzy_factor
                    score += gain
                    hits.append((gain, piece))
            if score > 0:
                for cue in cat.negative:
                    if t.exact(cue) is not None:
                        score -= cue.weight
            out.append(CategorySuggestion(cat.code, round(score, 3), _top_triggers(hits, sc.max_triggers)))
        return out

    def _detect(
        self, t: _Text, scored: list[CategorySuggestion], forced: Mapping[str, list[str]] | None = None
    ) -> list[UrgencyFlag]:
        sc = self._scoring
        by_code = {s.code: s for s in scored}
        raised: dict[str, list[str]] = {}
        walk = t.cues_to_try(self._urgency_cues)
        for rule, cues_to_try in zip(self._urgency, walk, strict=True):
            triggers: list[str] = list((forced or {}).get(rule.flag, []))
            if (
                rule.unless
                and any(t.exact(c) is not None for c in rule.unless)
                and not any(t.exact(c) is not None for c in rule.unless_not)
            ):
                if triggers:
                    raised[rule.flag] = triggers[: sc.max_triggers]
                continue
            for cue in cues_to_try:
                found = t.exact(cue)
                if found is None:
                    near = t.near(cue, sc.urgency_fuzzy_min_coverage, sc)
                    found = near[1] if near else None
                if found:
                    _extend_unique(triggers, [found])
            for pattern in rule.patterns:
                found = t.pattern(pattern)
                if found:
                    _extend_unique(triggers, [found])
            for code in rule.categories:
                s = by_code.get(code)
                if s is not None and s.score >= sc.urgency_category_min_score:
                    _extend_unique(triggers, s.triggers)
            if triggers:
                raised[rule.flag] = triggers[: sc.max_triggers]

        flags = []
        for rule in self._urgency:
            if rule.flag not in raised:
                continue
            desks: list[str] = []
            # Escalation desks go first: when a suicide looks imminent, 110 is the first number to show.
            for esc in rule.escalations:
                if (
                    any(f in raised for f in esc.when_flags)
                    or any(t.exact(c) is not None for c in esc.cues)
                    or any(t.pattern(p) for p in esc.patterns)
                ):
                    _extend_unique(desks, esc.desks)
            _extend_unique(desks, rule.desks)
            flags.append(UrgencyFlag(rule.flag, raised[rule.flag], desks))
        return flags


# ---------------------------------------------------------------------------------------------------------
# Building and checking the rules
# ---------------------------------------------------------------------------------------------------------


class TriageRulesError(ValueError):
    """The rules refer to a category or flag they do not define; `problems` lists every issue."""

    def __init__(self, problems: list[str]) -> None:
        self.problems = list(problems)
        super().__init__("; ".join(self.problems) or "invalid triage rules")


def cues(phrases: Iterable[str], weight: float = 1.0) -> tuple[Cue, ...]:
    return tuple(Cue.build(p, weight) for p in phrases)


def weighted_cues(weighted: Mapping[float, Iterable[str]]) -> tuple[Cue, ...]:
    """`{weight: [phrase, ...], ...}` → cues. A phrase listed twice keeps its highest weight."""
    best: dict[str, Cue] = {}
    for weight, phrases in weighted.items():
        for cue in cues(phrases, float(weight)):
            if cue.key not in best or best[cue.key].weight < cue.weight:
                best[cue.key] = cue
    return tuple(best.values())


def reference_problems(categories: Sequence[CategoryRule], urgency: Sequence[UrgencyRule]) -> list[str]:
    """What a schema cannot check: every category and flag an urgency rule names is defined."""
    codes = {c.code for c in categories}
    flags = {u.flag for u in urgency}
    problems = []
    for u in urgency:
        unknown = set(u.categories) - codes
        if unknown:
            problems.append(f"urgency.{u.flag}.categories: unknown category codes {sorted(unknown)}")
        for i, esc in enumerate(u.escalations):
            unknown = set(esc.when_flags) - flags
            if unknown:
                problems.append(f"urgency.{u.flag}.escalations[{i}]: unknown flags {sorted(unknown)}")
    return problems


def _extend_unique(target: list[str], items: Iterable[str]) -> None:
    for item in items:
        if item and item not in target:
            target.append(item)


def _top_triggers(hits: list[tuple[float, str]], limit: int) -> list[str]:
    out: list[str] = []
    for _, phrase in sorted(hits, key=lambda h: -h[0]):
        if phrase not in out:
            out.append(phrase)
    return out[:limit]
