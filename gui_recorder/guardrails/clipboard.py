"""Clipboard rules: text the browser puts on the remote clipboard, checked when its stream ends.

The relay forwards clipboard data as it flows (the filter decides whether a
clipboard may be used at all), so a clipboard rule raises an alert, a
notification or a termination; ``block`` is for typed lines only.
"""

from __future__ import annotations

import base64
import binascii

from gui_recorder.guardrails.rules import Hit, RuleSet
from gui_recorder.protocol import Instruction
from gui_recorder.vocabulary import RuleSource

MAX_CLIPBOARD_TEXT = 65536  # what is checked of one paste: its start
MAX_STREAMS = 8


class ClipboardGuard:
    def __init__(self, rules: RuleSet):
        self.rules = rules.reading(RuleSource.CLIPBOARD).prepare()
        self._streams: dict[str, bytearray] = {}

    def instruction(self, ins: Instruction) -> list[Hit]:
        """Feed a forwarded ``clipboard``, ``blob`` or ``end``; the hits when a clipboard stream ends."""
        if not self.rules:
            return []
        opcode = ins[0]
        if opcode == "clipboard" and len(ins) == 3 and ins[2].startswith("text/") and len(self._streams) < MAX_STREAMS:
            self._streams[ins[1]] = bytearray()
        elif opcode == "blob" and len(ins) == 3 and ins[1] in self._streams:
            data = self._streams[ins[1]]
            if len(data) < MAX_CLIPBOARD_TEXT:
                try:
                    data.extend(base64.b64decode(ins[2], validate=True)[:MAX_CLIPBOARD_TEXT - len(data)])
                except (binascii.Error, ValueError):
                    pass  # guacd refuses it too; nothing to read
        elif opcode == "end" and len(ins) == 2 and ins[1] in self._streams:
            text = self._streams.pop(ins[1]).decode("utf-8", "replace")
            return self.rules.match(text, RuleSource.CLIPBOARD)
        return []
