"""SSH sessions (issue 15): a real OpenSSH server through guacd's SSH plugin and the gateway.

What the terminal printed is searchable from guacd's typescript (source
``terminal``, no OCR); the host key is pinned at first use and a changed one
is refused with a message that says what to do.
"""

from __future__ import annotations

import asyncio
import os
import secrets
import subprocess
from pathlib import Path

import pytest
import websockets

from conftest import wait_for
from gui_recorder.gateway.host_keys import fingerprint
from gui_recorder.protocol import Parser
from gui_recorder.recording.typescript import HEADER, TypescriptTail
from gui_recorder.text.terminal import TerminalDecoder

LETTERS = "abcdefghjkmnpqrstuvwxyz"


def _word() -> str:
    return "".join(secrets.choice(LETTERS) for _ in range(7))


# -- the parts, without the stack ----------------------------------------------------------

def test_terminal_lines_survive_escapes_redraws_and_any_chunking():
    # What bash with readline really printed (captured from guacd's typescript): a prompt, a redraw of the
    # line after CR with a delete (CSI P) and an insert (CSI @), bracketed-paste modes, colours.
    stream = ("\x1b[H\x1b[J\x1b[?2004hgr-demo@vm:~$ echo one\r\x1b[5P(arg: 1) echo one\r\x1b[5@gr-demo@vm:~$ "
              "echo one two\r\n\x1b[?2004l\r\x1b[01;34mone\x1b[0m two\r\n"
              "abcX\bd\tend\r\n\x1b]0;title\x07tail\x1b[K\r\n\x1b[?2004hgr-demo@vm:~$ \r\n")
    expected = None
    for size in (1, 2, 3, 5, 8, 13, len(stream)):
        decoder = TerminalDecoder()
        lines = []
        for i in range(0, len(stream), size):
            lines += decoder.write(stream[i:i + size])
        lines += decoder.flush()
        texts = [line.text for line in lines]
        assert "one two" in texts  # the command's output, colours gone
        assert "abcd    end" in texts  # backspace overwrote X, the tab went to column 8
        assert "tail" in texts and not any("title" in t for t in texts)  # a window title is not printed text
        assert expected is None or texts == expected, f"chunks of {size} decode differently"
        expected = texts


def test_terminal_offsets_come_from_the_recording_clock():
    decoder = TerminalDecoder()
    decoder.feed(("sync", "1000"))
    assert decoder.feed(("gr-typescript", "1250", "hello ")) == []
    lines = decoder.feed(("gr-typescript", "1400", "world\r\n"))
    assert [(l.text, l.start_ms, l.end_ms) for l in lines] == [("hello world", 250, 400)]


def test_typescript_tail_reads_what_is_new_and_deletes_guacds_files(tmp_path):
    path = tmp_path / "session"
    tail = TypescriptTail(path)
    assert tail.read() == ""  # guacd has not created it yet
    with open(path, "wb") as f:
        f.write(HEADER[:5].encode())
        f.flush()
        assert tail.read() == ""  # could still be the header
        f.write(HEADER[5:].encode() + "grüß ".encode()[:-2])
        f.flush()
        assert tail.read() == "grü"  # a character cut in two waits for its second byte
        f.write("ß ".encode()[-2:] + b"ok\r\n")
        f.flush()
        assert tail.read() == "ß ok\r\n"
    path.with_name("session.timing").write_text("0.1 3\n")
    tail.close()
    assert not path.exists() and not path.with_name("session.timing").exists()


def test_fingerprint_is_openssh_s(tmp_path):
    key = tmp_path / "k"
    subprocess.run(["ssh-keygen", "-q", "-t", "rsa", "-b", "2048", "-N", "", "-f", str(key)], check=True)
    line = "[127.0.0.1]:2222 " + " ".join(key.with_suffix(".pub").read_text().split()[:2])
    listed = subprocess.run(["ssh-keygen", "-l", "-f", str(key.with_suffix(".pub"))], check=True,
                            capture_output=True, text=True).stdout.split()[1]
    assert fingerprint(line) == listed


# -- through the gateway, on the real sshd --------------------------------------------------

def _words_file(count: int) -> tuple[str, list[str]]:
    """Random words in a file the demo account can read: printed by `cat`, never typed."""
    words = [_word() for _ in range(count)]
    path = f"/tmp/gr-ssh-words-{secrets.token_hex(4)}.txt"
    with open(path, "w") as f:
        for i in range(0, count, 6):
            f.write(" ".join(words[i:i + 6]) + "\n")
    os.chmod(path, 0o644)
    return path, words


async def test_ssh_session_printed_words_are_all_found_and_typed_commands_too(gateway, worker, stack):
    from support.sessions import drive_session

    path, words = _words_file(120)
    marker = _word()
    try:
        session_id = await drive_session(gateway, "demo-ssh", f"cat {path} # {marker}\n", seconds=3)
    finally:
        os.unlink(path)
    with gateway.api("auditor") as auditor:
        def indexed():
            entries = auditor.get(f"/api/sessions/{session_id}/text").json().get("items") or []
            printed = " ".join(e["text"] for e in entries if e["source"] == "terminal")
            return entries if all(w in printed.split() for w in words) else None

        entries = wait_for(indexed, timeout=180, interval=1, what="the SSH session's printed words indexed")
        missing = []
        for word in words:
            hits = auditor.get("/api/search", params={"q": word, "source": "terminal"}).json()["results"]
            if not any(h["session_id"] == session_id for h in hits):
                missing.append(word)
        assert not missing, f"{len(missing)} of {len(words)} printed words not found: {missing[:10]}"
        typed = auditor.get("/api/search", params={"q": marker, "source": "typed"}).json()["results"]
        assert any(h["session_id"] == session_id and f"cat {path}" in h["text"] for h in typed)
        session = auditor.get(f"/api/sessions/{session_id}").json()
        assert session["protocol"] == "ssh" and session["status"] == "ended", session
    # The gateway's copy of guacd's typescript is gone: the recording holds the output now.
    assert not (gateway.settings.resolved_typescript_dir / session_id).exists()
    with gateway.api("admin") as admin:
        pinned = admin.get("/api/admin/connections/demo-ssh").json()["parameters"].get("host-key")
        assert pinned == stack.ssh.host_key, "the first session pinned the server's key"
        events = admin.get("/api/audit", params={"action": "connection.host_key_recorded"}).json()
        assert any(e["target"] == "demo-ssh" and e["detail"]["fingerprint"] == fingerprint(pinned) for e in events)
        info = wait_for(lambda: admin.get(f"/api/sessions/{session_id}").json().get("video"), timeout=180,
                        interval=1, what="the SSH session's video")
        assert info["duration_ms"] > 2000 and info["width"] > 0  # the player has the terminal's video


async def test_ssh_password_login_and_a_changed_host_key_is_refused(gateway, stack, tmp_path):
    from support.clients import TunnelClient

    conn_id = "ssh-password-" + secrets.token_hex(3)
    spec = {"id": conn_id, "name": "SSH by password", "protocol": "ssh", "host": stack.ssh.host,
            "port": stack.ssh.port, "username": stack.ssh.username, "password": stack.ssh.password,
            "allowed_roles": ["vendor"]}
    with gateway.api("admin") as admin:
        admin.post("/api/admin/connections", json=spec).raise_for_status()
        shown = admin.get(f"/api/admin/connections/{conn_id}").json()
        assert shown["has_password"] and "password" not in str(shown.get("parameters"))

    async def open_session():
        with gateway.api("vendor") as vendor:
            token = vendor.post(f"/api/connections/{conn_id}/tunnel-token").raise_for_status().json()["token"]
        return await TunnelClient.open(gateway.url, token)

    client = await open_session()
    try:
        await client.first_frame()  # password accepted: the terminal is drawn
    finally:
        await client.disconnect()
    with gateway.api("admin") as admin:
        assert admin.get(f"/api/admin/connections/{conn_id}").json()["parameters"]["host-key"] == stack.ssh.host_key
        # The server "re-keyed" (an impostor): pin another key, as if that one had been seen first.
        other = tmp_path / "other"
        subprocess.run(["ssh-keygen", "-q", "-t", "rsa", "-b", "2048", "-N", "", "-f", str(other)], check=True)
        impostor = f"[{stack.ssh.host}]:{stack.ssh.port} " + " ".join(other.with_suffix(".pub").read_text().split()[:2])
        admin.put(f"/api/admin/connections/{conn_id}",
                  json={**spec, "password": None, "parameters": {"host-key": impostor}}).raise_for_status()
    with gateway.api("vendor") as vendor:
        token = vendor.post(f"/api/connections/{conn_id}/tunnel-token").raise_for_status().json()["token"]
    url = gateway.url.replace("http", "ws", 1) + f"api/tunnel?token={token}"
    async with websockets.connect(url, subprotocols=["guacamole"]) as ws:
        first = Parser().feed_text(await asyncio.wait_for(ws.recv(), 30))[0]
        with pytest.raises(websockets.ConnectionClosed):
            await asyncio.wait_for(ws.recv(), 30)
    assert first[0] == "error" and first[2] == str(0x0203), list(first)
    message = first[1]
    assert "host key" in message and fingerprint(impostor) in message and fingerprint(stack.ssh.host_key) in message
    assert "admin" in message  # what to do about it
    with gateway.api("admin") as admin:
        rows = admin.get("/api/sessions", params={"connection": conn_id, "status": "refused"}).json()
        assert rows and "host key" in rows[0]["end_reason"], rows
        admin.delete(f"/api/admin/connections/{conn_id}")


async def test_guacd_itself_refuses_a_host_key_that_does_not_match(stack, tmp_path):
    """The pin handed to guacd is enforced by guacd too (a key changed between our look and its connection)."""
    from gui_recorder.guacd import ClientInfo, ConnectionDefinition, open_guacd
    from support.clients import GuacdClient

    other = tmp_path / "other"
    subprocess.run(["ssh-keygen", "-q", "-t", "rsa", "-b", "2048", "-N", "", "-f", str(other)], check=True)
    line = f"[{stack.ssh.host}]:{stack.ssh.port} " + " ".join(other.with_suffix(".pub").read_text().split()[:2])
    params = {**stack.ssh.guacd_parameters(), "host-key": line}
    conn = await open_guacd(stack.guacd.host, stack.guacd.port, ConnectionDefinition("ssh", params),
                            ClientInfo(1024, 768))
    client = GuacdClient(conn)
    try:
        await asyncio.wait_for(client.task, 30)
    finally:
        await conn.close(disconnect=False)
    # guacd tells the client only "Aborted" (512); why is in its log.
    assert client.error is not None and client.error[2] == "512", client.error
    log = Path(stack.var_dir, "logs", "guacd.log").read_text(errors="replace")
    assert "Host key did not match" in log


async def test_an_ssh_session_is_watched_live_and_terminated(gateway):
    from support.clients import TunnelClient

    with gateway.api("vendor") as vendor:
        token = vendor.post("/api/connections/demo-ssh/tunnel-token").raise_for_status().json()["token"]
    user = await TunnelClient.open(gateway.url, token)
    try:
        await user.first_frame()
        with gateway.api("auditor") as auditor:
            watch = auditor.post(f"/api/sessions/{user.session_id}/watch-token").raise_for_status().json()["token"]
            url = gateway.url.replace("http", "ws", 1) + f"api/watch?token={watch}"
            async with websockets.connect(url, subprotocols=["guacamole"], max_size=None) as ws:
                parser, drawn = Parser(), set()
                while "sync" not in drawn:  # the terminal, as guacd draws it for a joining watcher
                    for ins in parser.feed_text(await asyncio.wait_for(ws.recv(), 30)):
                        drawn.add(ins[0])
                        if ins[0] == "error":
                            raise AssertionError(f"the watcher was refused: {list(ins)}")
                assert drawn & {"img", "png", "rect", "cfill", "copy"}, drawn
            auditor.post(f"/api/sessions/{user.session_id}/terminate",
                         json={"reason": "ssh test"}).raise_for_status()
        await user.wait_closed()
    finally:
        await user.close()
    with gateway.api("admin") as admin:
        row = wait_for(lambda: (r := admin.get(f"/api/sessions/{user.session_id}").json())["status"] != "active"
                       and r, timeout=30, interval=0.2, what="the session's end")
        assert row["status"] == "terminated" and "ssh test" in row["end_reason"], row


def test_typescripts_left_by_a_dead_gateway_are_swept_at_start(tmp_path):
    from gui_recorder.gateway.ssh import sweep_typescripts
    from gui_recorder.settings import Settings

    settings = Settings(var_dir=tmp_path, secret_key="k" * 32, s3_secret_key="s" * 12)
    assert sweep_typescripts(settings) == 0  # nothing there yet
    directory = settings.resolved_typescript_dir
    directory.mkdir()
    (directory / "0b5e-session").write_text("[BEGIN TYPESCRIPT]\nroot password: hunter2\n")
    (directory / "0b5e-session.timing").write_text("0.1 12\n")
    assert sweep_typescripts(settings) == 2 and list(directory.iterdir()) == []


def test_a_pinned_host_key_survives_edits_but_not_a_move(tmp_path):
    from gui_recorder.db import Database
    from gui_recorder.gateway.connections import ConnectionIn, ensure_connection, get_connection
    from gui_recorder.settings import Settings

    settings = Settings(var_dir=tmp_path, secret_key="k" * 32, s3_secret_key="s" * 12)
    db = Database(settings)
    try:
        db.create_all()
        spec = dict(id="srv", name="srv", protocol="ssh", host="10.0.0.5", port=22, username="ops")
        ensure_connection(db, settings, ConnectionIn(**spec))
        with db.session() as s:  # what host_keys records at the first session
            from gui_recorder.db import Connection

            s.get(Connection, "srv").parameters = {"host-key": "10.0.0.5 ssh-rsa AAAA"}
        ensure_connection(db, settings, ConnectionIn(**{**spec, "name": "renamed"}))
        assert get_connection(db, "srv").parameters == {"host-key": "10.0.0.5 ssh-rsa AAAA"}
        ensure_connection(db, settings, ConnectionIn(**{**spec, "parameters": {"host-key": ""}}))
        assert get_connection(db, "srv").parameters == {"host-key": ""}  # the admin asks to pin again
        ensure_connection(db, settings, ConnectionIn(**{**spec, "parameters": {"host-key": "10.0.0.5 ssh-rsa BBBB"}}))
        ensure_connection(db, settings, ConnectionIn(**{**spec, "port": 2222}))
        assert "host-key" not in get_connection(db, "srv").parameters  # another endpoint: another key
    finally:
        db.dispose()


async def test_printed_words_are_searchable_while_the_ssh_session_runs(gateway, worker):
    from support.clients import TunnelClient

    path, words = _words_file(6)
    try:
        with gateway.api("vendor") as vendor:
            token = vendor.post("/api/connections/demo-ssh/tunnel-token").raise_for_status().json()["token"]
        client = await TunnelClient.open(gateway.url, token)
        try:
            await client.first_frame()
            await client.type(f"cat {path}\n")
            with gateway.api("auditor") as auditor:
                def live_hit():
                    results = auditor.get("/api/search", params={"q": words[-1], "source": "terminal"}).json()
                    return [r for r in results["results"] if r["session_id"] == client.session_id]

                deadline = asyncio.get_running_loop().time() + 90
                while not await asyncio.to_thread(live_hit):
                    assert asyncio.get_running_loop().time() < deadline, "not indexed while the session ran"
                    await asyncio.sleep(0.5)
                assert auditor.get(f"/api/sessions/{client.session_id}").json()["status"] == "active"
        finally:
            await client.disconnect()
    finally:
        os.unlink(path)
