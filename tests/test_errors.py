"""The error tree drawn in errors.py is the code, and each edge renders an error the same way.

HTTP: ``{"error", "detail"}`` for our errors, validation errors and the
framework's own 404/405 alike. WebSocket: the Guacamole status in the `error`
instruction and the close reason, the close code Guacamole's endpoint uses for
it. CLI: the message and the class's exit code.
"""

from __future__ import annotations

import re
import subprocess
import sys

import pytest
import websockets

import gui_recorder.errors as errors
from gui_recorder.guacd.status import Status, websocket_close_code
from gui_recorder.protocol import Parser

ROW = re.compile(r"^\s*[│├└─ ]*(?P<name>[A-Z]\w+)\s{2,}.*?\s(?P<http>\d{3})\s+(?P<guac>0x[0-9A-F]{4}|its own status)"
                 r"(?:\s+[A-Z_]+)?\s+(?P<ws>\d{4}|\.\.)\s+(?P<exit>\d)\s*$")


def _classes():
    return {name: cls for name, cls in vars(errors).items()
            if isinstance(cls, type) and issubclass(cls, errors.GuiRecorderError)}


def _drawn() -> dict[str, tuple[re.Match, str]]:
    """Each drawn class -> (its row, the class drawn as its parent: the nearest one above, less indented)."""
    drawn, stack = {}, []  # stack of (column, name)
    for line in errors.__doc__.splitlines():
        m = ROW.match(line)
        if not m:
            continue
        column = line.index(m["name"])
        while stack and stack[-1][0] >= column:
            stack.pop()
        drawn[m["name"]] = (m, stack[-1][1] if stack else "Exception")
        stack.append((column, m["name"]))
    return drawn


def test_the_drawn_tree_matches_every_class():
    drawn, classes = _drawn(), _classes()
    assert set(drawn) == set(classes), f"drawn but not defined, or defined but not drawn: {set(drawn) ^ set(classes)}"
    for name, cls in classes.items():
        row, parent = drawn[name]
        assert cls.__mro__[1].__name__ == parent, f"{name} is drawn under {parent}"
        assert int(row["http"]) == cls.http_status, name
        assert int(row["exit"]) == cls.exit_code, name
        if row["guac"] != "its own status":
            assert int(row["guac"], 16) == cls.guacamole_status, name
            assert int(row["ws"]) == websocket_close_code(cls.guacamole_status), name


def test_guacd_errors_carry_guacds_own_status():
    exc = errors.GuacdError("the remote desktop rejected the credentials", Status.UPSTREAM_NOT_FOUND)
    assert exc.guacamole_status == Status.UPSTREAM_NOT_FOUND and exc.http_status == 502
    assert errors.GuacdUnreachable("no guacd").guacamole_status == 0x0207


@pytest.mark.parametrize("path,method", [("/api/sessions?limit=0", "GET"), ("/api/no-such-thing", "GET"),
                                         ("/api/auth/login", "GET")])
def test_http_errors_share_one_body_shape(gateway, path, method):
    with gateway.api("auditor") as api:
        resp = api.request(method, path)
    body = resp.json()
    assert resp.status_code in (404, 405, 422)
    assert set(body) >= {"error", "detail"} and isinstance(body["detail"], str) and body["detail"]
    if resp.status_code == 422:
        assert body["error"] == "ValidationError" and "limit" in body["detail"]
        assert body["fields"][0]["field"] == "limit"


async def test_a_refused_tunnel_closes_with_guacamoles_codes(gateway):
    url = gateway.url.replace("http", "ws", 1) + "api/tunnel?token=not-a-token"
    async with websockets.connect(url, subprotocols=["guacamole"]) as ws:
        instructions = Parser().feed_text(await ws.recv())
        with pytest.raises(websockets.ConnectionClosed) as closed:
            await ws.recv()
    assert instructions[0][0] == "error" and instructions[0][2] == str(int(Status.CLIENT_UNAUTHORIZED))
    assert closed.value.rcvd.code == 1008 and closed.value.rcvd.reason == str(int(Status.CLIENT_UNAUTHORIZED))


def test_the_cli_exits_with_the_errors_code(tmp_path):
    # A component that is down is "retry later" (3), not "fix your input" (2).
    env_file = tmp_path / "down.env"
    env_file.write_text("GUI_RECORDER_SECRET_KEY=" + "k" * 32 + "\nGUI_RECORDER_S3_SECRET_KEY=s\n"
                        f"GUI_RECORDER_DATABASE_URL=postgresql+psycopg://nobody@127.0.0.1:1/none\n")
    down = subprocess.run([sys.executable, "-m", "gui_recorder.cli", "--env-file", str(env_file), "search", "x"],
                          capture_output=True, text=True, timeout=120)
    assert down.returncode == 3, down.stderr
    assert "Traceback" not in down.stderr
    missing = subprocess.run([sys.executable, "-m", "gui_recorder.cli", "--env-file", str(tmp_path / "none.env"),
                              "search", "x"], capture_output=True, text=True, timeout=60)
    assert missing.returncode == 2 and "no settings file" in missing.stderr
