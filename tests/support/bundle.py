"""The evidence bundle README's steps, run as written (tests/test_sealing*.py)."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

INDENT = " " * 7


def readme_step(readme: str, step: int) -> str:
    """The commands of step ``step`` of sealed/README.txt: its lines indented as code, dedented."""
    body = re.split(rf"(?m)^{step}\. ", readme, maxsplit=1)[1]
    body = re.split(rf"(?m)^{step + 1}\. ", body, maxsplit=1)[0]
    return "\n".join(line[len(INDENT):] for line in body.splitlines() if line.startswith(INDENT)) + "\n"


def run_step(readme: str, step: int, cwd: Path) -> str:
    """Run a shell step of the README in the unzipped bundle ``cwd``; its output (stdout and stderr)."""
    done = subprocess.run(["bash", "-c", readme_step(readme, step)], cwd=cwd, capture_output=True, text=True)
    return done.stdout + done.stderr
