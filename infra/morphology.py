"""The council masking's morphological analyser: SudachiPy with its core dictionary (both from PyPI), adapted to
the domain's `ProperNouns` port. Sudachi tags person names (姓/名), places (地名) and other proper nouns; a
surname and a given name side by side (佐藤 健太, 福田 Ryo) become one span, and a proper noun written in kana or
romaji next to a name is taken with it (サトウ ケンタ), since the council must not see either half."""

from __future__ import annotations

import threading

from domain.anonymise import Span

# Sudachi refuses very long input (about 49 KB in UTF-8); texts are cut at line ends, and long lines into pieces.
CHUNK = 4000


class SudachiProperNouns:
    def __init__(self) -> None:
        from sudachipy import Dictionary, SplitMode

        self._dictionary = Dictionary(dict="core")
        self._mode = SplitMode.C
        self._local = threading.local()  # a Sudachi tokenizer is not safe to share between threads

    def _tokenizer(self):
        tokenizer = getattr(self._local, "tokenizer", None)
        if tokenizer is None:
            make = getattr(self._dictionary, "tokenizer", None) or self._dictionary.create
            tokenizer = self._local.tokenizer = make(mode=self._mode)
        return tokenizer

    def find(self, text: str) -> list[Span]:
        spans: list[Span] = []
        offset = 0
        for line in text.splitlines(keepends=True):
            for i in range(0, len(line), CHUNK):
                spans += self._find(line[i : i + CHUNK], offset + i)
            offset += len(line)
        return spans

    def is_common(self, word: str) -> bool:
        """Dictionary words only, none of them a proper noun (写真, 不倫相手, です); a word the dictionary does not
        know (リョウタ), or hiragana that only splits into pieces, is not common: it may be a name."""
        morphemes = list(self._tokenizer().tokenize(word))
        if len(morphemes) > 1 and all("\u3041" <= c <= "\u3096" for c in word.replace(" ", "")):
            return False  # わた・な・べり・こ: kana cut into pieces is a name the dictionary does not know
        return bool(morphemes) and all(
            not m.is_oov() and m.part_of_speech()[1] != "固有名詞" for m in morphemes
        )

    def _find(self, text: str, offset: int) -> list[Span]:
        tagged: list[tuple[int, int, str | None, str]] = []
        for m in self._tokenizer().tokenize(text):
            pos = m.part_of_speech()
            kind = None
            if pos[1] == "固有名詞":
                if pos[2] == "人名":
                    kind = "name"
                elif pos[2] == "地名" and pos[3] != "国" and not m.surface().isascii():
                    kind = "address"
                else:
                    kind = "proper"
            tagged.append((m.begin(), m.end(), kind, m.surface()))
        spans: list[Span] = []
        i = 0
        while i < len(tagged):
            start, end, kind, _ = tagged[i]
            if kind not in ("name", "address"):
                i += 1
                continue
            j = i + 1
            # 佐藤 健太 / 福田 Ryo / サトウ ケンタ: join neighbours across one space or middle dot.
            while j < len(tagged):
                nxt = tagged[j]
                if (
                    nxt[2] in ("name", "proper")
                    and kind == "name"
                    or nxt[2] == "address"
                    and kind == "address"
                ):
                    end = nxt[1]
                    j += 1
                elif (
                    nxt[3] in (" ", "\u3000", "・")
                    and j + 1 < len(tagged)
                    and (
                        tagged[j + 1][2] == "name"
                        or kind == "name"
                        and _looks_like_given_name(tagged[j + 1][3])
                    )
                ):
                    end = tagged[j + 1][1]
                    j += 2
                else:
                    break
            if kind == "name" and i > 0 and tagged[i - 1][2] == "proper" and tagged[i - 1][1] == start:
                start = tagged[i - 1][0]
            spans.append(Span(offset + start, offset + end, kind))
            i = j
        return spans


def _looks_like_given_name(surface: str) -> bool:
    """A romaji or katakana word after a surname (福田 Ryo, 荒木 ソウ)."""
    return bool(surface) and (
        surface[0].isupper()
        and surface.isascii()
        and surface.isalpha()
        or all("\u30a1" <= c <= "\u30fc" for c in surface)
    )
