"""Guardrail rules: validated when saved, compiled once, evaluated with a time limit.

A rule matches words (case-insensitive, on word boundaries), one regular
expression, or a shipped preset. Every kind becomes one pattern of the
``regex`` module, whose matching takes a ``timeout``: a rule that backtracks
catastrophically on some line stops after ``timeout_ms`` and counts as no
match (logged, counted), so no rule can hang the relay (issue 14, item 1).
At save time a regex must compile, stay under ``MAX_REGEX_LENGTH`` and finish
in time on adversarial probe lines built from its own characters.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass, field

import regex

from gui_recorder.errors import PolicyRuleError
from gui_recorder.vocabulary import MatchKind, RuleAction, RuleSource, Severity

log = logging.getLogger(__name__)

MAX_REGEX_LENGTH = 512
MAX_WORDS = 200
MAX_WORD_LENGTH = 200
# Lines longer than this are checked on their end: that is what is about to be submitted.
MAX_TEXT = 4096
PROBE_LENGTH = 2000

# name -> (what it is, its patterns). Case-insensitive; each on word boundaries.
PRESETS: dict[str, tuple[str, tuple[str, ...]]] = {
    "destructive-windows-commands": (
        "destructive Windows commands: format, diskpart, net user /add, vssadmin delete shadows, "
        "Stop-Computer, rm -rf, shutdown",
        (r"\bformat(?:\.com)?\s+[a-z]:", r"\bdiskpart\b", r"\bnet\s+user\b.*\s/add\b",
         r"\bvssadmin(?:\.exe)?\s+delete\s+shadows\b", r"\bstop-computer\b",
         r"\brm\s+(?:-[a-z]*r[a-z]*f[a-z]*|-[a-z]*f[a-z]*r[a-z]*|-r\s+-f|-f\s+-r)\b", r"\bshutdown\b"),
    ),
}


@dataclass(frozen=True)
class Scope:
    """Who and where a rule applies; an empty list is "all". ``tags``: connections carrying any of these
    tags (the same tags that grant access), so a rule follows a new production server without an edit."""

    connections: tuple[str, ...] = ()
    roles: tuple[str, ...] = ()
    users: tuple[str, ...] = ()
    tags: tuple[str, ...] = ()

    @classmethod
    def from_dict(cls, data: dict | None) -> "Scope":
        data = data or {}
        return cls(*(tuple(str(v) for v in data.get(k) or ()) for k in ("connections", "roles", "users", "tags")))

    def to_dict(self) -> dict[str, list[str]]:
        return {"connections": list(self.connections), "roles": list(self.roles), "users": list(self.users),
                "tags": list(self.tags)}

    def applies(self, username: str, role: str, connection_id: str, tags: Iterable[str] = ()) -> bool:
        return ((not self.connections or connection_id in self.connections)
                and (not self.roles or role in self.roles) and (not self.users or username in self.users)
                and (not self.tags or not set(self.tags).isdisjoint(tags)))


@dataclass(frozen=True)
class Rule:
    """One compiled rule. ``id`` and ``version`` name the stored policy as it was when it matched."""

    name: str
    pattern: regex.Pattern
    source: str = RuleSource.ANY
    severity: str = Severity.MEDIUM
    action: str = RuleAction.ALERT
    scope: Scope = field(default_factory=Scope)
    id: int | None = None
    version: int = 1

    def reads(self, source: str) -> bool:
        return self.source == RuleSource.ANY or self.source == source


@dataclass(frozen=True)
class Hit:
    rule: Rule
    text: str  # the line or screen text that matched
    source: str
    matched: str  # the part of it that matched


def _words_pattern(words: list[str]) -> str:
    if not words or len(words) > MAX_WORDS:
        raise PolicyRuleError(f"a words rule needs 1 to {MAX_WORDS} words or phrases")
    parts = []
    for word in words:
        word = word.strip()
        if not word or len(word) > MAX_WORD_LENGTH:
            raise PolicyRuleError(f"each word or phrase must be 1 to {MAX_WORD_LENGTH} characters")
        # Whitespace inside a phrase matches any run of it; a boundary only next to a word character.
        body = r"\s+".join(regex.escape(w) for w in word.split())
        left = r"\b" if regex.match(r"\w", word) else ""
        right = r"\b" if regex.search(r"\w$", word) else ""
        parts.append(left + body + right)
    return "|".join(f"(?:{p})" for p in parts)


def _probes(expression: str) -> list[str]:
    """Lines that make a backtracking pattern explode: runs of its own characters, then a mismatch."""
    chars = sorted({c for c in expression if c.isprintable() and c not in "\\()[]{}|?*+^$."} | {"a", " ", "0"})
    probes = [c * PROBE_LENGTH + "\x00" for c in chars[:40]]
    probes.append("".join(chars) * (PROBE_LENGTH // max(1, len(chars))) + "\x00")
    return probes


def compile_pattern(kind: str, value: list[str], timeout_ms: float) -> regex.Pattern:
    """The one pattern of a rule, or ``PolicyRuleError`` saying what to fix."""
    if kind == MatchKind.WORDS:
        expression = _words_pattern(value)
    elif kind == MatchKind.REGEX:
        if len(value) != 1 or not value[0]:
            raise PolicyRuleError("a regex rule has exactly one expression")
        expression = value[0]
        if len(expression) > MAX_REGEX_LENGTH:
            raise PolicyRuleError(f"the regex is {len(expression)} characters; at most {MAX_REGEX_LENGTH}")
    elif kind == MatchKind.PRESET:
        if len(value) != 1 or value[0] not in PRESETS:
            raise PolicyRuleError(f"unknown preset {value!r}; the presets are {sorted(PRESETS)}")
        expression = "|".join(f"(?:{p})" for p in PRESETS[value[0]][1])
    else:
        raise PolicyRuleError(f"unknown match kind {kind!r}")
    try:
        pattern = regex.compile(expression, regex.IGNORECASE | regex.V0)
    except regex.error as exc:
        raise PolicyRuleError(f"the regex does not compile: {exc}") from exc
    if kind == MatchKind.REGEX:
        for probe in _probes(expression):
            try:
                pattern.search(probe, timeout=timeout_ms / 1000)
            except TimeoutError as exc:
                raise PolicyRuleError(f"the regex takes longer than {timeout_ms:g} ms on a {len(probe)}-character "
                                      "line (catastrophic backtracking): simplify it") from exc
    return pattern


def check_combination(source: str, action: str) -> None:
    if action == RuleAction.BLOCK and source not in (RuleSource.TYPED, RuleSource.ANY):
        raise PolicyRuleError("`block` acts before a typed line is submitted: its source must be typed (or any)")


# Group references count groups from the start of the pattern: such a rule is not merged with others.
_GROUP_REFERENCE = regex.compile(r"\\[1-9]|\\g<|\(\?P=|\(\?&|\(\?[0-9R+-]")


@dataclass
class RuleSet:
    """The rules that apply to one session (or to every session, in the worker).

    ``prepare`` merges the rules into one alternation, searched first: on the common line that matches
    nothing, one search (one time limit) instead of one per rule. Only when it finds something, or
    runs out of time, is each rule searched on its own, for which rules matched and what.
    """

    rules: list[Rule]
    timeout_ms: float = 20.0
    timeouts: int = 0  # evaluations stopped by the time limit
    _merged: regex.Pattern | None = field(default=None, repr=False)
    _alone: list[Rule] = field(default_factory=list, repr=False)  # rules searched every time

    def __bool__(self) -> bool:
        return bool(self.rules)

    def prepare(self) -> "RuleSet":
        mergeable = [r for r in self.rules if not _GROUP_REFERENCE.search(r.pattern.pattern)]
        self._alone = [r for r in self.rules if r not in mergeable]
        self._merged = None
        if len(mergeable) > 1:
            try:
                self._merged = regex.compile("|".join(f"(?:{r.pattern.pattern})" for r in mergeable),
                                             regex.IGNORECASE | regex.V0)
            except regex.error:
                self._alone = list(self.rules)  # each rule compiled alone; merged, one did not
        else:
            self._alone = list(self.rules)
        return self

    def reading(self, source: str) -> "RuleSet":
        return RuleSet([r for r in self.rules if r.reads(source)], self.timeout_ms)

    def scoped(self, username: str, role: str, connection_id: str, tags: Iterable[str] = ()) -> "RuleSet":
        tags = tuple(tags)
        return RuleSet([r for r in self.rules if r.scope.applies(username, role, connection_id, tags)],
                       self.timeout_ms)

    def match(self, text: str, source: str) -> list[Hit]:
        if not text:
            return []
        text = text[-MAX_TEXT:]
        candidates = self.rules
        if self._merged is not None:
            try:
                if self._merged.search(text, timeout=self.timeout_ms / 1000) is None:
                    candidates = self._alone
            except TimeoutError:
                pass  # each rule on its own, each with its own limit
        hits = []
        for rule in candidates:
            if not rule.reads(source):
                continue
            try:
                found = rule.pattern.search(text, timeout=self.timeout_ms / 1000)
            except TimeoutError:
                self.timeouts += 1
                log.warning("rule %r stopped after %g ms on a %d-character line: no match", rule.name,
                            self.timeout_ms, len(text))
                continue
            if found is not None:
                hits.append(Hit(rule, text, source, found.group(0)))
        return hits


def rule_set(rules: Iterable[Rule], timeout_ms: float) -> RuleSet:
    return RuleSet(list(rules), timeout_ms)
