"""Text on screen for well under a second is indexed (issue 15, item 5): a dialog that flashes up for
about half a second on the real VNC desktop, recorded by real guacd, is read by the text stage from
its last look before it was replaced, with the time it was on screen."""

from __future__ import annotations

import asyncio
import os
import secrets
import subprocess

from gui_recorder.render import screen_frames
from gui_recorder.text.engine import TesseractEngine
from gui_recorder.text.ocr import extract_text
from support.sessions import open_recorded, wait_written

FLASH = r"""
import sys, tkinter as tk
root = tk.Tk(); root.title("flash"); root.geometry("+60+300"); root.configure(bg="white")
tk.Label(root, text=sys.argv[1], font=("DejaVu Sans", 16), bg="white", padx=20, pady=20).pack()
root.after(int(sys.argv[2]), root.destroy)
root.mainloop()
"""


async def test_a_dialog_shown_for_half_a_second_is_read(stack, tmp_path):
    # Letters OCR cannot confuse (no l/1, o/0), and a word no other test shows.
    word = "flash" + "".join(secrets.choice("abcdefghjkmnpqrstuvwxyz") for _ in range(6))
    client = await open_recorded(stack, tmp_path, "flash")
    try:
        await client.next_sync(30)
        await asyncio.sleep(1.5)  # the desktop settled first
        env = {**os.environ, "DISPLAY": stack.vnc.display}
        shown = await asyncio.to_thread(subprocess.run, ["/usr/bin/python3", "-c", FLASH, f"Delete {word}?", "600"],
                                        env=env, timeout=30)
        assert shown.returncode == 0
        await asyncio.sleep(2.0)  # what replaced it settles too
    finally:
        await client.close()
    recording = await wait_written(tmp_path / "flash")
    result = extract_text(recording, frames=screen_frames, engine=TesseractEngine())
    hits = [item for item in result.screen if word in item.text]
    assert hits, f"{word} not read; the screen read: {[i.text for i in result.screen]}"
    on_screen = hits[0].last_ms - hits[0].first_ms
    print(f"the dialog was read, on screen {on_screen} ms by the recording's clock")
    assert 300 <= on_screen <= 1500, on_screen
