"""Screen-word recall in small UI fonts (issue 15, item 4), per font size, on a REAL recording.

Real guacd records a session on the real VNC desktop while a Tk window shows random words in 8, 9
and 10 pt: as labels, as the entries of a menu-like list, and in a text editor area. The words are
picked at random from Debian's English dictionary (wamerican, installed by setup), a third of them
capitalised; ``--letters`` draws random letter strings instead (no word a language model could
guess: host names, ids). Then the text stage (``extract_text``, the product's own OCR) reads the
recording, and for each size the share of the words shown that it read is printed (target
>= 98 %), with the misses.

    .venv/bin/python bench/ocr_fonts.py [--rounds 3] [--letters] [--keep DIR]
    .venv/bin/python bench/ocr_fonts.py --recording DIR/fonts.guac --truth DIR/fonts.json
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import secrets
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
# tesseract as the worker runs it (`ocr_threads`, default 1): OpenMP's spinning threads otherwise cost
# about 7x the CPU on these 2 cores (31.9 against 4.4 CPU-s for the same recording).
os.environ.setdefault("OMP_THREAD_LIMIT", "1")
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))

from gui_recorder.protocol import Instruction  # noqa: E402
from gui_recorder.render import screen_frames  # noqa: E402
from gui_recorder.text.engine import TesseractEngine  # noqa: E402
from gui_recorder.text.ocr import extract_text  # noqa: E402

from support.small_fonts import FONT, KINDS, SIZES, window_command, window_spec, word_source, words_of  # noqa: E402

POINTER = (1000, 20)  # away from the window: X focus and hover effects stay put


async def record(directory: Path, rounds: int, draw) -> tuple[Path, list[dict]]:
    """A recording of ``rounds`` windows, each shown for a few seconds; what each showed."""
    from gui_recorder.stack import Stack
    from support.sessions import open_recorded, wait_written

    rng = secrets.SystemRandom()
    specs = []
    with Stack(directory / "stack", minio=False, rdp=False, ssh=False) as stack:
        target = stack.info.vnc
        client = await open_recorded(stack.info, directory, "fonts")
        try:
            await client.next_sync(30)
            await client.conn.send(Instruction("mouse", *POINTER, 0))
            for n in range(rounds):
                spec = window_spec(rng, f"fonts-{n}-{secrets.token_hex(3)}", draw)
                tk = subprocess.Popen(window_command(spec, target.display, stack.info.demo_user),
                                      stdout=subprocess.PIPE, text=True)
                try:
                    line = await asyncio.wait_for(asyncio.to_thread(tk.stdout.readline), 20)
                    assert line.strip() == "ready", f"the Tk window did not show: {line!r}"
                    await asyncio.sleep(4.0)  # settled, then read: the reader waits ~1 s of stillness
                finally:
                    tk.terminate()
                    tk.wait(5)
                    tk.stdout.close()
                specs.append(spec)
                await asyncio.sleep(1.5)
        finally:
            await client.close()
        await wait_written(directory / "fonts")
    return directory / "fonts", specs


def recall(recording: Path, specs: list[dict], engine=None) -> dict:
    result = extract_text(recording, frames=screen_frames, engine=engine or TesseractEngine())
    seen = set()
    for item in result.screen:
        seen.update(item.text.split())
    out = {}
    for size in SIZES:
        for kind in KINDS:
            words = [w for spec in specs for w in words_of(spec, size, kind)]
            missing = [w for w in words if w not in seen]
            out[(size, kind)] = (len(words), missing)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--letters", action="store_true", help="random letter strings, not dictionary words")
    parser.add_argument("--recording", type=Path)
    parser.add_argument("--truth", type=Path, help="the words shown (JSON written by a run with --keep)")
    parser.add_argument("--keep", type=Path, help="keep the recording and its truth in this directory")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        if args.recording:
            recording, specs = args.recording, json.loads(args.truth.read_text())
        else:
            recording, specs = asyncio.run(record(Path(tmp), args.rounds, word_source(args.letters)))
            if args.keep:
                args.keep.mkdir(parents=True, exist_ok=True)
                (args.keep / "fonts.guac").write_bytes(recording.read_bytes())
                (args.keep / "fonts.json").write_text(json.dumps(specs))
        figures = recall(recording, specs)
    print(f"{len(specs)} windows of random {'letter strings' if args.letters else 'dictionary words'} in {FONT}; "
          "the product's text stage (extract_text)")
    print(f"{'size':>5} {'where':>7} {'words':>6} {'recall':>7}  missing")
    for size in SIZES:
        total = found = 0
        for kind in KINDS:
            words, missing = figures[(size, kind)]
            total, found = total + words, found + words - len(missing)
            print(f"{size:>4}p {kind:>7} {words:>6} {(words - len(missing)) / words:>7.1%}  {missing[:8]}")
        print(f"{size:>4}p {'all':>7} {total:>6} {found / total:>7.1%}  (target >= 98 %: "
              f"{'MET' if found / total >= 0.98 else 'NOT MET'})")


if __name__ == "__main__":
    main()
