"""The gateway's security: who may open what, tokens, credentials at rest, the client filter.

Against the real gateway, real guacd and real targets. "Refused before any guacd
connection" is checked in guacd's own log: it logs every new connection.
"""

from __future__ import annotations

import asyncio
import os
import time
from datetime import timedelta
from pathlib import Path

import httpx
import pytest
import websockets

from gui_recorder.protocol import Parser, encode


def guacd_connections(stack) -> int:
    log = Path(stack.var_dir) / "logs" / "guacd.log"
    return log.read_text(errors="replace").count("Creating new client")


def tunnel_url(gateway, token: str | None) -> str:
    query = f"token={token}&" if token is not None else ""
    return gateway.url.replace("http", "ws", 1) + f"api/tunnel?{query}width=800&height=600&dpi=96"


async def refused(gateway, token, headers=None) -> tuple[str, int | None, str]:
    """Open the tunnel; return (first instruction opcode, its status, close reason)."""
    async with websockets.connect(tunnel_url(gateway, token), subprotocols=["guacamole"],
                                  additional_headers=headers or {}) as ws:
        first = Parser().feed_text(await asyncio.wait_for(ws.recv(), 10))[0]
        with pytest.raises(websockets.ConnectionClosed):
            await asyncio.wait_for(ws.recv(), 10)
        return first[0], int(first[2]) if len(first) > 2 else None, ws.close_reason


def tunnel_token(api: httpx.Client, connection: str) -> str:
    return api.post(f"/api/connections/{connection}/tunnel-token").raise_for_status().json()["token"]


def last_audit(gateway, action: str) -> dict:
    with gateway.api("admin") as admin:
        return admin.get("/api/audit", params={"action": action, "limit": 1}).raise_for_status().json()[0]


# -- HTTP API ------------------------------------------------------------------

def test_login_bearer_cookie_and_bad_password(gateway):
    bad = httpx.post(gateway.url + "api/auth/login", json={"username": "vendor", "password": "nope"})
    assert bad.status_code == 401 and bad.json()["error"] == "AuthError"
    unknown = httpx.post(gateway.url + "api/auth/login", json={"username": "nobody", "password": "nope"})
    assert unknown.status_code == 401 and unknown.json()["detail"] == bad.json()["detail"]
    assert last_audit(gateway, "auth.login_failed")["username"] == "nobody"
    with httpx.Client(base_url=gateway.url) as browser_like:
        ok = browser_like.post("/api/auth/login", json={"username": "vendor", "password": gateway.accounts["vendor"]})
        assert ok.status_code == 200 and ok.json()["role"] == "vendor"
        assert "httponly" in ok.headers["set-cookie"].lower() and "samesite=strict" in ok.headers["set-cookie"].lower()
        assert browser_like.get("/api/auth/me").json() == {"username": "vendor", "role": "vendor",  # cookie
                                                           "capabilities": ["connection.use", "session.view_own"]}
    bearer = httpx.get(gateway.url + "api/auth/me", headers={"Authorization": f"Bearer {ok.json()['token']}"})
    assert bearer.json()["username"] == "vendor"
    assert httpx.get(gateway.url + "api/auth/me").status_code == 401


def test_roles_and_grants(gateway):
    with gateway.api("vendor") as vendor, gateway.api("admin") as admin:
        demo = {c["id"] for c in gateway.connections}  # what the demo seeds grant vendors
        assert demo >= {"demo-vnc", "demo-rdp", "demo-ssh"}
        assert {c["id"] for c in vendor.get("/api/connections").json()} == demo
        assert vendor.get("/api/admin/connections").status_code == 403
        assert vendor.get("/api/audit").status_code == 403
        spec = {"id": "admins-only", "name": "Admins only", "protocol": "vnc", "host": "127.0.0.1", "port": 1,
                "password": "never-shown-anywhere", "allowed_roles": ["operator"]}
        admin.put("/api/admin/connections/admins-only", json=spec)
        if admin.get("/api/admin/connections/admins-only").status_code == 404:
            assert admin.post("/api/admin/connections", json=spec).status_code == 201
        assert "admins-only" not in {c["id"] for c in vendor.get("/api/connections").json()}
        denied = vendor.post("/api/connections/admins-only/tunnel-token")
        assert denied.status_code == 403 and denied.json()["error"] == "ForbiddenError"
        ghost = vendor.post("/api/connections/no-such-one/tunnel-token")  # same answer: existence not revealed
        assert ghost.status_code == 403 and ghost.json()["detail"] == denied.json()["detail"].replace(
            "admins-only", "no-such-one")
        assert last_audit(gateway, "connection.denied")["target"] == "no-such-one"  # audited alike
        with gateway.api("auditor") as auditor:
            assert auditor.post("/api/connections/demo-vnc/tunnel-token").status_code == 403


def test_credentials_never_returned_and_encrypted_at_rest(gateway, stack):
    with gateway.api("admin") as admin:
        listing = admin.get("/api/admin/connections").text + admin.get("/api/admin/connections/demo-rdp").text
    assert stack.rdp.password not in listing and stack.vnc.password not in listing
    assert '"has_password":true' in listing.replace(" ", "")
    db_file = Path(gateway.settings.var_dir) / "gui-recorder.db"
    raw = db_file.read_bytes() + b"".join(p.read_bytes() for p in db_file.parent.glob("gui-recorder.db-*"))
    assert stack.rdp.password.encode() not in raw and stack.vnc.password.encode() not in raw
    assert b"demo-rdp" in raw  # the file really is the database


# -- credentials never leave (issue 10: a PUT to another host with password null sent the old one there) --

def vnc_response(challenge: bytes, password: str) -> bytes:
    """What a VNC client answers to a VNC-auth challenge: DES with the password, bits of each key byte reversed."""
    from cryptography.hazmat.decrepit.ciphers.algorithms import TripleDES
    from cryptography.hazmat.primitives.ciphers import Cipher, modes

    key = bytes(int(f"{b:08b}"[::-1], 2) for b in password.encode()[:8].ljust(8, b"\0"))
    enc = Cipher(TripleDES(key * 3), modes.ECB()).encryptor()
    return enc.update(challenge) + enc.finalize()


class CapturingVnc:
    """A measurement stand-in for a hostile VNC server: offers VNC auth, keeps what guacd answers, refuses."""

    CHALLENGE = bytes(range(16))

    def __init__(self):
        self.responses: list[bytes] = []
        self.connected = asyncio.Event()

    async def start(self) -> int:
        self.server = await asyncio.start_server(self._client, "127.0.0.1", 0)
        return self.server.sockets[0].getsockname()[1]

    async def _client(self, reader, writer):
        self.connected.set()
        try:
            writer.write(b"RFB 003.008\n")
            await reader.readexactly(12)
            writer.write(bytes([1, 2]))  # one security type: VNC authentication
            await reader.readexactly(1)
            writer.write(self.CHALLENGE)
            await writer.drain()
            self.responses.append(await asyncio.wait_for(reader.readexactly(16), 10))
            writer.write((1).to_bytes(4, "big") + (6).to_bytes(4, "big") + b"failed")
            await writer.drain()
        except (asyncio.IncompleteReadError, asyncio.TimeoutError, ConnectionError):
            pass
        finally:
            writer.close()


async def open_and_wait_for_the_end(gateway, connection: str) -> None:
    with gateway.api("admin") as admin:
        token = tunnel_token(admin, connection)
    async with websockets.connect(tunnel_url(gateway, token), subprotocols=["guacamole"]) as ws:
        with pytest.raises(websockets.ConnectionClosed):
            while True:
                await asyncio.wait_for(ws.recv(), 30)


async def test_a_connection_moved_to_another_host_does_not_take_its_password_along(gateway, stack):
    fake = CapturingVnc()
    port = await fake.start()
    try:
        spec = {"id": "exfil-vnc", "name": "Exfil", "protocol": "vnc", "host": stack.vnc.host,
                "port": stack.vnc.port, "password": stack.vnc.password}
        with gateway.api("admin") as admin:
            admin.delete("/api/admin/connections/exfil-vnc")
            assert admin.post("/api/admin/connections", json=spec).status_code == 201
            # The attack: another host/port, password null ("keep it").
            moved = admin.put("/api/admin/connections/exfil-vnc",
                              json={**spec, "host": "127.0.0.1", "port": port, "password": None})
            assert moved.status_code == 200 and moved.json()["has_password"] is False
            assert last_audit(gateway, "connection.update")["detail"]["credentials_cleared"] is True
        await open_and_wait_for_the_end(gateway, "exfil-vnc")
        assert fake.connected.is_set(), "guacd did connect to the new host"
        leaked = vnc_response(CapturingVnc.CHALLENGE, stack.vnc.password)
        assert leaked not in fake.responses, "the stored password was sent to the new host"

        # Control: the capture does see a password that is given (so the check above can fail).
        with gateway.api("admin") as admin:
            admin.put("/api/admin/connections/exfil-vnc",
                      json={**spec, "host": "127.0.0.1", "port": port}).raise_for_status()
        await open_and_wait_for_the_end(gateway, "exfil-vnc")
        assert leaked in fake.responses
    finally:
        fake.server.close()
        with gateway.api("admin") as admin:
            admin.delete("/api/admin/connections/exfil-vnc")


def test_secret_parameters_are_sealed_write_only_and_reach_guacd(gateway):
    from gui_recorder.gateway import connections
    from gui_recorder.gateway.filter import ClientPolicy

    secrets_given = {"gateway-password": "gw-" + os.urandom(8).hex(), "sftp-password": "sftp-" + os.urandom(8).hex(),
                     "sftp-private-key": "-----BEGIN KEY-----" + os.urandom(16).hex()}
    spec = {"id": "sealed-rdp", "name": "Sealed", "protocol": "rdp", "host": "10.9.9.9", "port": 3389,
            "username": "svc-" + os.urandom(4).hex(), "password": "pw-" + os.urandom(8).hex(),
            "parameters": {"gateway-hostname": "rdgw.example", "security": "nla"},
            "secret_parameters": secrets_given}
    texts = []
    with gateway.api("admin") as admin:
        admin.delete("/api/admin/connections/sealed-rdp")
        plain = admin.post("/api/admin/connections", json={**spec, "parameters": {"gateway-password": "x"}})
        assert plain.status_code == 422 and "secret_parameters" in plain.text
        created = admin.post("/api/admin/connections", json=spec)
        assert created.status_code == 201
        texts += [created.text, admin.get("/api/admin/connections").text,
                  admin.get("/api/admin/connections/sealed-rdp").text, admin.get("/api/audit").text,
                  admin.get("/openapi.json").text]
        kept = admin.put("/api/admin/connections/sealed-rdp", json={**spec, "name": "Renamed", "password": None,
                                                                     "username": None, "secret_parameters": {}})
        texts.append(kept.text)
        view = kept.json()
        assert view["secret_parameters"] == sorted(secrets_given) and view["has_password"] and view["has_username"]
        assert "username" not in view and "gateway-password" not in view["parameters"]
        row = connections.get_connection(gateway.app.state.services.db, "sealed-rdp")
        params = connections.definition_for(row, gateway.settings, ClientPolicy()).parameters
        assert all(params[k] == v for k, v in secrets_given.items()), "only guacd gets them back"
        # The RDP gateway host changes: its sealed password does not follow it.
        moved = admin.put("/api/admin/connections/sealed-rdp",
                          json={**spec, "parameters": {"gateway-hostname": "evil.example"}, "password": None,
                                "username": None, "secret_parameters": {}}).json()
        assert moved["secret_parameters"] == [] and not moved["has_password"]
        texts.append(str(moved))
    db_file = Path(gateway.settings.var_dir) / "gui-recorder.db"
    raw = b"".join(p.read_bytes() for p in db_file.parent.glob("gui-recorder.db*"))
    assert b"rdgw.example" in raw or b"evil.example" in raw, "this is the database"
    for value in [*secrets_given.values(), spec["password"], spec["username"]]:
        assert value.encode() not in raw, "sealed at rest"
        assert all(value not in t for t in texts), "never in an admin response"
    with gateway.api("admin") as admin:
        admin.delete("/api/admin/connections/sealed-rdp")


# -- tunnel tokens: refused before guacd is ever contacted ------------------------

async def test_missing_unknown_reused_expired_and_foreign_tokens_never_reach_guacd(gateway, stack):
    before = guacd_connections(stack)
    assert await refused(gateway, None) == ("error", 0x0301, str(0x0301))
    assert (await refused(gateway, "not-a-token"))[1] == 0x0301
    with gateway.api("vendor") as vendor:
        token = tunnel_token(vendor, "demo-vnc")
        db = gateway.app.state.services.db
        real_now = db.now
        db.now = lambda: real_now() + timedelta(seconds=61)  # the injected clock moves past the 60 s
        try:
            assert (await refused(gateway, token))[1] == 0x0301
        finally:
            db.now = real_now
        assert "expired" in last_audit(gateway, "tunnel.refused")["detail"]["reason"]
        # Another user's browser (its own sign-in cookie) presenting the vendor's token.
        stolen = tunnel_token(vendor, "demo-vnc")
        operator_token = gateway.login("operator")
        status = (await refused(gateway, stolen, {"Cookie": f"gr_session={operator_token}"}))[1]
        assert status == 0x0303
        # A token is used once: the stolen one is burnt too.
        assert (await refused(gateway, stolen))[1] == 0x0301
        assert "already used" in last_audit(gateway, "tunnel.refused")["detail"]["reason"]
    assert guacd_connections(stack) == before, "no refused tunnel reached guacd"


# -- the client filter ----------------------------------------------------------------

async def run_until_closed(ws, parser: Parser, seen: list) -> None:
    while True:
        message = await asyncio.wait_for(ws.recv(), 20)
        for ins in parser.feed_text(message):
            seen.append(ins)
            if ins[0] == "sync":
                await ws.send(encode(("sync", ins[1])))


async def test_injected_select_after_handshake_ends_session(gateway, stack):
    with gateway.api("vendor") as vendor:
        token = tunnel_token(vendor, "demo-vnc")
    async with websockets.connect(tunnel_url(gateway, token), subprotocols=["guacamole"], max_size=None) as ws:
        assert ws.subprotocol == "guacamole"
        parser = Parser()
        first = parser.feed_text(await ws.recv())
        assert first[0][0] == "" and len(first[0][1]) == 36, "the tunnel UUID comes first"
        session_id = first[0][1]
        seen: list = []
        # Wait for a frame, answer a ping, then inject a second handshake.
        while not any(i[0] == "sync" for i in seen):
            seen += parser.feed_text(await asyncio.wait_for(ws.recv(), 20))
        await ws.send(encode(("", "ping", "12345")))
        await ws.send(encode(("select", "rdp")))
        with pytest.raises(websockets.ConnectionClosed):
            await run_until_closed(ws, parser, seen)
        assert ("", "ping", "12345") in seen, "pings are echoed"
        assert ws.close_reason == str(0x0300)
        errors = [i for i in seen if i[0] == "error"]
        assert errors and errors[-1][2] == str(0x0300) and "select" in errors[-1][1]
    with gateway.api("admin") as admin:
        deadline = time.monotonic() + 15
        while (row := admin.get(f"/api/sessions/{session_id}").json())["status"] == "active":
            assert time.monotonic() < deadline
            await asyncio.sleep(0.2)
    assert row["status"] == "terminated" and "security violation" in row["end_reason"]
    event = last_audit(gateway, "security.violation")
    assert event["target"] == session_id and "select" in event["detail"]["detail"]


async def test_session_ends_when_its_recording_cannot_be_written(gateway):
    with gateway.api("vendor") as vendor:
        token = tunnel_token(vendor, "demo-vnc")
    async with websockets.connect(tunnel_url(gateway, token), subprotocols=["guacamole"], max_size=None) as ws:
        parser = Parser()
        session_id = parser.feed_text(await ws.recv())[0][1]
        seen: list = []
        while not any(i[0] == "sync" for i in seen):
            seen += parser.feed_text(await asyncio.wait_for(ws.recv(), 20))
        # Fault injection: the spool's segment file now fails every write with ENOSPC,
        # exactly as a full disk does (/dev/full); the real disk cannot be filled safely.
        spool = gateway.app.state.services.active[session_id].recorder.spool
        spool._file.close()
        full = open("/dev/full", "wb", buffering=0)
        spool._file = full
        try:
            await ws.send(encode(("key", "65", "1")) + encode(("key", "65", "0")))
            with pytest.raises(websockets.ConnectionClosed):
                await run_until_closed(ws, parser, seen)
        finally:
            full.close()
        assert ws.close_reason == str(0x0200)
        assert "recording could not be written" in [i for i in seen if i[0] == "error"][-1][1]
    with gateway.api("admin") as admin:
        deadline = time.monotonic() + 15
        while (row := admin.get(f"/api/sessions/{session_id}").json())["status"] == "active":
            assert time.monotonic() < deadline
            await asyncio.sleep(0.2)
    assert row["status"] == "failed" and "recording failed" in row["end_reason"]
