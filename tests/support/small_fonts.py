"""A Tk window of random words in small UI fonts (issue 15, item 4): what tests/test_ocr_small_fonts.py
shows on the real desktops and bench/ocr_fonts.py records, so both measure the same thing."""

from __future__ import annotations

import json
from pathlib import Path

SIZES = (8, 9, 10)
KINDS = ("label", "menu", "editor")
FONT = "DejaVu Sans"  # Debian's default UI font (fonts-dejavu-core), what Tk draws labels in
WORDS_PER_LINE = 5
LINES_PER_KIND = 2
DICTIONARY = Path("/usr/share/dict/american-english")  # wamerican, installed by setup

# Labels, a menu-like list and a text editor area per size. `ready` is printed once it is drawn.
WINDOW = r"""
import json, sys, tkinter as tk
spec = json.loads(sys.argv[1])
root = tk.Tk(); root.title(spec["title"]); root.geometry(spec.get("geometry", "+0+0")); root.configure(bg="white")
for size, kinds in spec["sizes"].items():
    font = (spec["font"], int(size))
    frame = tk.Frame(root, bg="white"); frame.pack(anchor="w", fill="x", padx=8, pady=4)
    for line in kinds["label"]:
        tk.Label(frame, text=line, font=font, bg="white").pack(anchor="w")
    menu = tk.Listbox(frame, font=font, height=len(kinds["menu"]), width=60, relief="flat")
    for entry in kinds["menu"]:
        menu.insert("end", entry)
    menu.pack(anchor="w", pady=2)
    editor = tk.Text(frame, font=font, height=len(kinds["editor"]), width=70, relief="sunken")
    editor.insert("1.0", "\n".join(kinds["editor"])); editor.pack(anchor="w", pady=2)
root.after(300, lambda: print("ready", flush=True))
root.mainloop()
"""


def word_source(letters: bool = False):
    """A function drawing one random word: from the dictionary, or (``letters``) random letters."""
    if letters:
        return lambda rng: "".join(rng.choice("abcdefghijklmnopqrstuvwxyz") for _ in range(rng.randint(4, 9)))
    words = [w for w in DICTIONARY.read_text().split() if w.isascii() and w.isalpha() and w.islower()
             and 4 <= len(w) <= 10]
    return lambda rng: rng.choice(words)


def window_spec(rng, title: str, draw, geometry: str = "+0+0") -> dict:
    """Random words for every size and kind, a third of them capitalised."""
    def word():
        w = draw(rng)
        return w.capitalize() if rng.random() < 0.3 else w

    sizes = {str(size): {kind: [" ".join(word() for _ in range(WORDS_PER_LINE)) for _ in range(LINES_PER_KIND)]
                         for kind in KINDS} for size in SIZES}
    return {"title": title, "font": FONT, "sizes": sizes, "geometry": geometry}


def words_of(spec: dict, size: int, kind: str | None = None) -> list[str]:
    return [w for k in ([kind] if kind else KINDS) for line in spec["sizes"][str(size)][k] for w in line.split()]


def window_command(spec: dict, display: str, user: str | None) -> list[str]:
    """The command showing ``spec`` on ``display``, as ``user`` (the demo account) when given."""
    run_as = ["runuser", "-u", user, "--"] if user else []
    return [*run_as, "env", f"DISPLAY={display}", "/usr/bin/python3", "-c", WINDOW, json.dumps(spec)]
