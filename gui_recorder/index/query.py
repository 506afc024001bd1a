"""User search text -> a safe full-text query.

The user types words, "quoted phrases" and prefix* terms; all must match (AND).
Nothing the user types reaches the FTS syntax unquoted: every term becomes a
double-quoted string (quotes doubled), as datasette's ``escape_fts`` does, so
``AND``, ``NEAR(``, ``-`` or a lone ``"`` are searched as text and can never
cause an FTS syntax error. A backend renders ``ParsedQuery`` in its own syntax.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from gui_recorder.errors import SearchQueryError

MAX_QUERY_CHARS = 500
MAX_TERMS = 16

# A quoted phrase (closing quote optional: an unbalanced quote is not an error),
# or a run of non-space characters.
_TERM = re.compile(r'"([^"]*)"?|([^\s"]+)')
_WORD_CHAR = re.compile(r"\w")
# Control characters (NUL ends an FTS5 string early) are never part of a word.
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
# Scripts written without spaces between words (Chinese, Japanese kana and kanji, their punctuation and
# full-width forms): word tokenizers see a whole run as one token, so such terms are searched as
# substrings (the backends' trigram path) and OCR joins their characters without spaces (text/engine.py).
CJK = re.compile("[\u3000-\u303f\u3040-\u30ff\u31f0-\u31ff\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff"
                 "\uff00-\uffef\U00020000-\U0002fa1f]")


@dataclass(frozen=True)
class Term:
    text: str  # the words, as typed (without quotes or the trailing *)
    phrase: bool = False
    prefix: bool = False


@dataclass(frozen=True)
class ParsedQuery:
    terms: tuple[Term, ...]

    def to_fts5(self) -> str:
        """SQLite FTS5 MATCH text: each term a quoted string, prefix terms with ``*``."""
        parts = []
        for term in self.terms:
            quoted = '"' + term.text.replace('"', '""') + '"'
            parts.append(quoted + "*" if term.prefix else quoted)
        return " ".join(parts)

    @property
    def has_cjk(self) -> bool:
        return any(CJK.search(t.text) for t in self.terms)

    @property
    def cjk_terms(self) -> tuple[Term, ...]:
        """Terms with CJK text: searched as substrings, not as tokens."""
        return tuple(t for t in self.terms if CJK.search(t.text))

    @property
    def word_terms(self) -> tuple[Term, ...]:
        return tuple(t for t in self.terms if not CJK.search(t.text))

    @property
    def words(self) -> list[str]:
        return [w for t in self.terms for w in re.findall(r"\w+", t.text)]


def compact_cjk(text: str) -> str:
    """No spaces between two CJK characters: how OCR'd and typed CJK text is stored (text/engine.py)."""
    return _CJK_GAP.sub("", text)


_CJK_GAP = re.compile(f"(?<={CJK.pattern})\\s+(?={CJK.pattern})")


def parse_query(text: str) -> ParsedQuery:
    """Parse what the user typed; ``SearchQueryError`` if too long or nothing searchable."""
    if len(text) > MAX_QUERY_CHARS:
        raise SearchQueryError(f"the query is {len(text)} characters long; at most {MAX_QUERY_CHARS}")
    terms: list[Term] = []
    for match in _TERM.finditer(_CONTROL.sub(" ", text)):
        phrase, word = match.group(1), match.group(2)
        if phrase is not None:
            phrase = " ".join(phrase.split())
            if _WORD_CHAR.search(phrase):
                terms.append(Term(phrase, phrase=True))
            continue
        prefix = word.endswith("*")
        word = word.rstrip("*")
        # Punctuation alone (``-``, ``<``, ``*``) has no token to match: the
        # tokenizer drops it, so the term is dropped too.
        if _WORD_CHAR.search(word):
            terms.append(Term(word, prefix=prefix))
    if not terms:
        raise SearchQueryError("the query has no word to search for")
    if len(terms) > MAX_TERMS:
        raise SearchQueryError(f"the query has {len(terms)} terms; at most {MAX_TERMS}")
    return ParsedQuery(tuple(terms))
