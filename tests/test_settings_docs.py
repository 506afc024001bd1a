"""Settings document themselves: docs/settings.md is generated from the fields and must match them.

datasette's pattern (SETTINGS -> docs, checked by a test): a field added without
a description, or a page left behind, fails here.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from pydantic import ValidationError

from gui_recorder.settings import Settings, settings_markdown, settings_table

DOCS = Path(__file__).resolve().parent.parent / "docs" / "settings.md"


def test_docs_settings_page_is_generated_from_the_fields():
    assert DOCS.read_text() == settings_markdown(), (
        "docs/settings.md is out of date: run `.venv/bin/gui-recorder settings --markdown > docs/settings.md`")


def test_every_setting_says_what_it_does():
    missing = [row["name"] for row in settings_table() if len(row["description"]) < 10]
    assert not missing, f"settings without a description: {missing}"
    assert {row["name"] for row in settings_table()} == set(Settings.model_fields)


def test_settings_are_frozen_after_start_up():
    settings = Settings(secret_key="k" * 32, s3_secret_key="s")
    with pytest.raises(ValidationError):
        settings.port = 1  # a running gateway's settings never change under it
    assert settings.model_copy(update={"port": 1}).port == 1 and settings.port == 8080


def test_bounds_are_enforced():
    with pytest.raises(ValidationError, match="guacd_port"):
        Settings(secret_key="k" * 32, s3_secret_key="s", guacd_port=70000)


def test_the_cli_lists_them_and_refuses_invalid_ones_with_a_clear_message(tmp_path):
    listing = subprocess.run([sys.executable, "-m", "gui_recorder.cli", "settings"], capture_output=True,
                             text=True, check=True).stdout
    assert "GUI_RECORDER_SEGMENT_MAX_SECONDS" in listing and "fsync" in listing
    env_file = tmp_path / "bad.env"
    env_file.write_text("GUI_RECORDER_SECRET_KEY=k\nGUI_RECORDER_S3_SECRET_KEY=s\nGUI_RECORDER_PORT=0\n")
    bad = subprocess.run([sys.executable, "-m", "gui_recorder.cli", "--env-file", str(env_file), "serve"],
                         capture_output=True, text=True)
    assert bad.returncode == 2
    assert "GUI_RECORDER_PORT" in bad.stderr and "Traceback" not in bad.stderr
