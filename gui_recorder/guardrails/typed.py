"""Typed-text rules in the relay: the line is decoded as it flows, checked before its Enter leaves.

The decoder is the text stage's own (``text.keys.KeyDecoder``), fed the
browser's ``key`` instructions in the order they are relayed. When a key
would submit the line (Return without a chord), the line is checked: a
``block`` or ``terminate`` hit keeps that Enter (and its release) from guacd,
so the target never receives the submission; other hits are alerts and the
Enter goes on. The decoder is then told nothing of a withheld Enter: the
target still holds the line as typed, and so does the decoder.

What is about to be submitted is the part after the last key that empties a
shell's or a console's line (Ctrl+U, Ctrl+C, Esc): a blocked line erased with
Ctrl+U and followed by an allowed command lets that command through. If a
yank (Ctrl+Y) follows, the erased text may be back: the whole line is checked.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from gui_recorder.guardrails.rules import Hit, RuleSet
from gui_recorder.protocol import Instruction
from gui_recorder.text.keys import KeyDecoder
from gui_recorder.vocabulary import RuleAction, RuleSource

WITHHOLDING = (RuleAction.BLOCK, RuleAction.TERMINATE)
LINE_CLEARING = ("<Ctrl+U>", "<Ctrl+C>", "<Esc>")
YANK = "<Ctrl+Y>"


def submitted_text(line: str) -> str:
    """The part of the decoded ``line`` the target would receive on Enter (see the module's docstring)."""
    cut = max((line.rfind(token) + len(token) for token in LINE_CLEARING if token in line), default=0)
    tail = line[cut:]
    return line if YANK in tail else tail


@dataclass
class KeyVerdict:
    forward: bool = True
    hits: list[Hit] = field(default_factory=list)

    @property
    def withheld(self) -> bool:
        return not self.forward and bool(self.hits)


class TypedGuard:
    def __init__(self, rules: RuleSet):
        self.rules = rules.reading(RuleSource.TYPED).prepare()
        self.decoder = KeyDecoder()
        self._swallowed: set[int] = set()  # keys whose press was withheld: their release is too

    def key(self, ins: Instruction) -> KeyVerdict:
        """The verdict on one browser ``key`` instruction (already passed by the filter)."""
        try:
            keysym, pressed = int(ins[1]), ins[2] == "1"
        except (IndexError, ValueError):
            return KeyVerdict()
        if not pressed and keysym in self._swallowed:
            self._swallowed.discard(keysym)
            return KeyVerdict(forward=False)
        if pressed and self.decoder.submits(keysym):
            hits = self.rules.match(submitted_text(self.decoder.current_line), RuleSource.TYPED)
            if any(h.rule.action in WITHHOLDING for h in hits):
                self._swallowed.add(keysym)
                return KeyVerdict(forward=False, hits=hits)
            self.decoder.feed(ins)
            return KeyVerdict(hits=hits)
        self.decoder.feed(ins)
        return KeyVerdict()
