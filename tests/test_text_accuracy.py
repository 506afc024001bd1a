"""Accuracy of the text stage on a session made through the REAL stack.

guacd connects to the VNC target and writes the recording itself; we type
through the Guacamole protocol (``key`` instructions) into the xterm and show
a Tk window with known words in proportional UI fonts. Then the whole text
stage (keys, real tesseract, the SQLite FTS5 index) must find every typed
phrase, >= 95 % of the words shown, each near the moment it appeared, over
VNC and over RDP.

``record_session`` is also what bench/ocr.py uses to make its recording.
"""

from __future__ import annotations

import asyncio
import os
import re
import secrets
import subprocess
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import pytest

from gui_recorder.protocol import Instruction
from support.clients import GuacdClient
from support.keys import RETURN
from support.sessions import open_recorded
POINTER = (300, 150)  # over the xterm (80x24 at +0+0): X focus follows the pointer, no window manager

# The Tk window: title, labels, buttons, a checkbox, in the default proportional
# UI font (DejaVu Sans ~9-10 pt) and a larger bold heading.
TK_LINES = [
    ("heading", "Quarterly Revenue Dashboard"),
    ("label", "Customer account balance overview"),
    ("label", "Warehouse inventory synchronized yesterday evening"),
    ("label", "Pending invoices require manager approval"),
    ("label", "Shipping schedule updated for northern region"),
    ("button", "Approve"),
    ("button", "Reject"),
    ("button", "Export Report"),
    ("check", "Remember password"),
    ("label", "Contact support before changing payment details"),
]
TK_GEOMETRY = "+40+470"  # below the xterm's text, away from the pointer

TK_APP = r"""
import sys, tkinter as tk
lines = eval(sys.argv[1])
root = tk.Tk()
root.title("Finance Console")
root.geometry(sys.argv[2])
row = tk.Frame(root)
for kind, text in lines:
    if kind == "heading":
        tk.Label(root, text=text, font=("DejaVu Sans", 14, "bold")).pack(anchor="w", padx=10, pady=4)
    elif kind == "label":
        tk.Label(root, text=text).pack(anchor="w", padx=10)
    elif kind == "button":
        tk.Button(row, text=text).pack(side="left", padx=6, pady=6)
    elif kind == "check":
        tk.Checkbutton(root, text=text).pack(anchor="w", padx=10)
row.pack(anchor="w", padx=4)
def shown():
    print("shown", flush=True)
root.after(300, shown)
root.mainloop()
"""


@dataclass
class Session:
    """What happened, with the moments on the recording's own clock (guacd's sync timestamps)."""

    recording: Path
    typed: list[tuple[str, int]] = field(default_factory=list)  # (line typed, sync ts when typing began)
    shown: list[tuple[str, int]] = field(default_factory=list)  # (words shown, sync ts when they appeared)
    started_at: datetime = field(default_factory=lambda: datetime.now(UTC))


async def record_session(stack, directory: Path, phrases: list[str], *, idle_s: float = 2.0,
                         extra_idle_s: float = 0.0, commands: tuple[str, ...] = (), protocol: str = "vnc") -> Session:
    """Type ``phrases`` (``\\b`` is BackSpace) as ``echo`` commands and show the Tk window.

    ``commands`` are typed as they are after the phrases, ``extra_idle_s``
    adds a quiet stretch before the end (bench: a realistic share of idle time).
    """
    directory.mkdir(parents=True, exist_ok=True)
    target = getattr(stack, protocol)
    client = await open_recorded(stack, directory, "x", protocol)
    conn = client.conn
    session = Session(directory / "x")
    tk = None
    try:
        await client.next_sync(30)
        await conn.send(Instruction("mouse", *POINTER, 0))
        await asyncio.sleep(0.5)
        await client.type("clear")
        await client.tap(RETURN)
        await asyncio.sleep(idle_s)
        half = len(phrases) // 2
        for phrase in phrases[:half]:
            await _type_line(client, session, phrase, idle_s)
        tk = subprocess.Popen(["/usr/bin/python3", "-c", TK_APP, repr(TK_LINES), TK_GEOMETRY],
                              env={**os.environ, "DISPLAY": target.display}, stdout=subprocess.PIPE, text=True)
        line = await asyncio.wait_for(asyncio.to_thread(tk.stdout.readline), 20)
        assert line.strip() == "shown", f"the Tk window did not show: {line!r}"
        await client.next_sync()
        await client.next_sync()
        session.shown.append((" ".join(text for _, text in TK_LINES), client.last_sync))
        await asyncio.sleep(idle_s + 0.5)
        for phrase in phrases[half:]:
            await _type_line(client, session, phrase, idle_s)
        for command in commands:
            session.typed.append((command, client.last_sync))
            await client.type(command)
            await client.tap(RETURN)
            await asyncio.sleep(idle_s)
        await asyncio.sleep(extra_idle_s)
        # Something last, so the recording ends after everything has settled.
        await conn.send(Instruction("mouse", POINTER[0] + 5, POINTER[1], 0))
        await asyncio.sleep(0.5)
    finally:
        if tk is not None:
            tk.terminate()
            tk.wait(5)
            tk.stdout.close()
        await client.close()
    # guacd closes the file when the connection ends.
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and not session.recording.exists():
        await asyncio.sleep(0.1)
    await asyncio.sleep(1.0)
    return session


async def _type_line(client: GuacdClient, session: Session, phrase: str, idle_s: float) -> None:
    began = client.last_sync
    await client.type(f"echo {phrase}")
    await client.tap(RETURN)
    session.typed.append((_edited(f"echo {phrase}"), began))
    await asyncio.sleep(idle_s)


def _edited(text: str) -> str:
    out: list[str] = []
    for char in text:
        if char == "\b":
            out and out.pop()
        else:
            out.append(char)
    return "".join(out)


def first_timestamp(recording: Path) -> int:
    from gui_recorder.text.ocr import iter_instructions
    from gui_recorder.protocol.timeline import instruction_timestamp

    for ins in iter_instructions(recording):
        ts = instruction_timestamp(ins)
        if ts is not None:
            return ts
    raise AssertionError("the recording has no timestamp")


def unique_phrases(n: int) -> list[str]:
    words = ["amber", "falcon", "orchid", "glacier", "copper", "lantern", "meadow", "harbor", "velvet", "summit"]
    # A fresh tag per run (letters only: OCR need not guess 0 from O), so a
    # stale index could never make the test pass.
    tag = "".join(secrets.choice(["ka", "lo", "mi", "ne", "ru", "ta", "vo", "pe"]) for _ in range(3))
    out = []
    for i in range(n):
        a, b = words[(i * 3) % len(words)], words[(i * 3 + 1) % len(words)]
        out.append(f"{a} {b} {tag}{'abcdefghijklmnopqrstuvwxyz'[i % 26]}")
    if out:
        # One correction, so BackSpace editing is part of what is checked.
        out[0] = out[0].replace(words[0], words[0][:-1] + "x\b" + words[0][-1], 1)
    return out


@pytest.fixture(scope="module", params=["vnc", "rdp"])
def recorded(request, stack, tmp_path_factory):
    # RDP: guacd's RDP path (freerdp-shadow with NLA), its own image encoding.
    async def run():
        return await record_session(stack, tmp_path_factory.mktemp("text-rec"), unique_phrases(4),
                                    protocol=request.param)

    return asyncio.run(run())


def test_typed_text_from_a_real_guacd_recording(recorded):
    from gui_recorder.text import decode_keys
    from gui_recorder.text.ocr import iter_instructions

    lines = decode_keys(iter_instructions(recorded.recording))
    texts = [line.text for line in lines]
    for phrase, _ in recorded.typed:
        assert phrase in texts


@pytest.fixture(scope="module")
def indexed(recorded, tmp_path_factory):
    # Screen text needs the display model (gui_recorder/render, built alongside).
    pytest.importorskip("gui_recorder.render", reason="the display model (gui_recorder.render) is not there yet")
    from sqlalchemy import create_engine

    from gui_recorder.index import SearchIndex, SessionMeta
    from gui_recorder.worker.tasks import index_recording

    index = SearchIndex(create_engine(f"sqlite:///{tmp_path_factory.mktemp('text-idx') / 'i.db'}"))
    meta = SessionMeta("acc-1", "vendor", "vnc-demo", "vnc", recorded.started_at)
    started = time.monotonic()
    counts = index_recording(index, meta, recorded.recording)
    print(f"\ntext stage + index: {time.monotonic() - started:.1f} s wall, {counts}")
    # Indexing again (e.g. after the live pass) must not duplicate anything.
    assert index_recording(index, meta, recorded.recording)["documents"] == counts["documents"]
    assert len(index.session_text("acc-1")) == counts["documents"]
    yield index
    index.close()


def test_every_typed_phrase_is_found_near_when_it_was_typed(recorded, indexed):
    index = indexed
    origin = first_timestamp(recorded.recording)
    for phrase, began in recorded.typed:
        hits = index.search(f'"{phrase}"', source="typed")
        assert [h.text for h in hits] == [phrase], phrase
        assert abs(hits[0].offset_ms - (began - origin)) <= 2000


def test_words_shown_on_screen_are_found_near_when_they_appeared(recorded, indexed):
    index = indexed
    origin = first_timestamp(recorded.recording)
    expected = []
    for text, appeared in recorded.shown:
        expected += [(w, appeared - origin) for w in re.findall(r"\w+", text)]
    for phrase, began in recorded.typed:
        # The echoed output line appears on screen too.
        expected += [(w, began - origin) for w in re.findall(r"\w+", phrase)]
    found, missed, late = 0, [], []
    for word, moment in expected:
        hits = index.search(word, source="screen", limit=50)
        if not hits:
            missed.append(word)
            continue
        found += 1
        nearest = min(hits, key=lambda h: abs(h.offset_ms - moment))
        # Typed words settle once the line is done: allow for the typing itself.
        if abs(nearest.offset_ms - moment) > 2000 + 40 * 30:
            late.append((word, nearest.offset_ms, moment))
    share = found / len(expected)
    print(f"\nscreen words found: {found}/{len(expected)} ({share:.1%}); missed {missed}")
    assert share >= 0.95, (missed, [e.text for e in index.session_text("acc-1")])
    assert not late, late


def test_live_pipeline_reads_the_same_recording_alike(recorded, indexed):
    # The live path (render's Display fed instruction by instruction) finds
    # what the offline pass found.
    from gui_recorder.render import LiveDisplay
    from gui_recorder.text.engine import TesseractEngine
    from gui_recorder.text.live import LiveText
    from gui_recorder.text.ocr import iter_instructions

    live = LiveText(LiveDisplay(), TesseractEngine())
    typed, screen = [], []
    for ins in iter_instructions(recorded.recording):
        update = live.feed(ins)
        typed += update.typed
        screen += update.screen
    end = live.close()
    typed += end.typed
    screen += end.screen
    offline = indexed.session_text("acc-1")
    assert [t.text for t in typed] == [e.text for e in offline if e.source == "typed"]
    live_words = {w for s in screen for w in re.findall(r"\w+", s.text)}
    offline_words = {w for e in offline if e.source == "screen" for w in re.findall(r"\w+", e.text)}
    assert len(live_words & offline_words) >= 0.95 * len(offline_words)
