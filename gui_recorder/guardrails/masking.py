"""Secrets in what reviewers read: detected and replaced by ``[masked:kind]``.

Detectors: private keys (PEM blocks), AWS-style access key ids and secret
keys, ``password=`` / ``pwd:`` style values (the name stays, the value goes),
card numbers that pass the Luhn check, and typed lines that answer a password
prompt (``password_entries``: the line before ran ``su``, ``sudo``, ``ssh``...,
or the screen showed "password:" since it). Applied where text leaves the
gateway for people: search results and snippets, the text timeline and the
evidence bundle's timeline. The recording and the index keep the original (the
sealed evidence must stay what was recorded); the ``unmask`` capability reads
it, and every unmask is audited.
"""

from __future__ import annotations

import html
import re
from collections.abc import Callable

_PRIVATE_KEY = re.compile(r"-----BEGIN (?:[A-Z0-9]+ )*PRIVATE KEY-----(?:.*?-----END (?:[A-Z0-9]+ )*PRIVATE KEY-----"
                          r"|.*\Z)", re.S)
_AWS_KEY_ID = re.compile(r"\b(?:AKIA|ASIA|AGPA|AIDA|AROA)[0-9A-Z]{16}\b")
_AWS_SECRET = re.compile(r"(?i)(aws_secret_access_key|secret_?access_?key)(\s*[=:]\s*)([A-Za-z0-9/+=]{40})\b")
_PASSWORD = re.compile(r"(?i)\b(password|passwd|pass|pwd|secret|token|api[_-]?key)(\s*[=:]\s*)"
                       r"(\"[^\"]*\"|'[^']*'|[^\s,;&]+)")
_CARD = re.compile(r"(?<!\d)(?:\d[ -]?){12,18}\d(?!\d)")


def luhn_ok(digits: str) -> bool:
    total = 0
    for i, ch in enumerate(reversed(digits)):
        n = int(ch)
        if i % 2:
            n = n * 2 - 9 if n > 4 else n * 2
        total += n
    return total % 10 == 0


def _card(match: re.Match) -> str:
    digits = re.sub(r"\D", "", match.group(0))
    return "[masked:card]" if 13 <= len(digits) <= 19 and luhn_ok(digits) else match.group(0)


# Order matters: a key block first (it contains anything), then named values, then bare patterns.
_DETECTORS: tuple[tuple[re.Pattern, Callable[[re.Match], str]], ...] = (
    (_PRIVATE_KEY, lambda m: "[masked:private-key]"),
    (_AWS_SECRET, lambda m: f"{m.group(1)}{m.group(2)}[masked:aws-secret]"),
    (_AWS_KEY_ID, lambda m: "[masked:aws-key]"),
    (_PASSWORD, lambda m: m.group(0) if m.group(3).startswith("[masked:")
     else f"{m.group(1)}{m.group(2)}[masked:password]"),
    (_CARD, _card),
)


def mask(text: str) -> str:
    for pattern, replace in _DETECTORS:
        text = pattern.sub(replace, text)
    return text


def mask_item(item: dict, query_terms: list[str] | None = None) -> dict:
    """A search result or timeline entry with its ``text`` (and ``snippet``) masked."""
    text = item.get("text") or ""
    masked = mask(text)
    if masked == text:
        return item
    out = {**item, "text": masked, "masked": True}
    if "snippet" in item:
        out["snippet"] = _snippet(masked, query_terms or [])
    return out


def _snippet(text: str, terms: list[str], limit: int = 300) -> str:
    shown = html.escape(text if len(text) <= limit else text[:limit] + "…")
    for term in sorted({t for t in terms if len(t) > 1 and "masked" not in t.lower()}, key=len, reverse=True):
        shown = re.sub(f"({re.escape(html.escape(term))})", r"<mark>\1</mark>", shown, flags=re.I)
    return shown


def query_terms(q: str) -> list[str]:
    return [t for t in re.findall(r"\w+", q) if t.upper() not in ("AND", "OR", "NOT", "NEAR")]


# A command that asks for a password next (the typed line after it is the password, not echoed).
_PROMPTING = re.compile(r"^\s*(?:sudo|su|passwd|ssh|scp|sftp|kinit|login|runas|psql|mysql\b.*\s-p)(?:\s|$)", re.I)
_SCREEN_PROMPT = re.compile(r"(?:password|passphrase|passcode|\bpin)\b[^:\n]{0,40}:\s*$", re.I)
PROMPT_WINDOW_MS = 60_000


def password_entries(entries: list[dict]) -> set[int]:
    """Offsets (ms) of the typed lines that answer a password prompt, from a session's timeline entries."""
    out: set[int] = set()
    previous_typed: dict | None = None
    prompt_ms: int | None = None
    for entry in sorted(entries, key=lambda e: e["offset_ms"]):
        if entry["source"] == "screen":
            if _SCREEN_PROMPT.search(entry["text"]):
                prompt_ms = entry["offset_ms"]
            continue
        if entry["source"] != "typed":
            continue
        after_prompt = prompt_ms is not None and entry["offset_ms"] - prompt_ms <= PROMPT_WINDOW_MS and (
            previous_typed is None or prompt_ms >= previous_typed["offset_ms"])
        if after_prompt or (previous_typed is not None and _PROMPTING.search(previous_typed["text"])
                            and entry["offset_ms"] - previous_typed["offset_ms"] <= PROMPT_WINDOW_MS):
            out.add(entry["offset_ms"])
            prompt_ms = None
        previous_typed = entry
    return out


def mask_timeline(entries: list[dict]) -> list[dict]:
    """A session's timeline with secrets masked, typed passwords included."""
    secret = password_entries(entries)
    return [{**e, "text": "[masked:password]", "masked": True}
            if e["source"] == "typed" and e["offset_ms"] in secret else mask_item(e) for e in entries]
