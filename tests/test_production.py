"""docs/production.md, followed: `gui-recorder serve` as its own process, its secrets from files
(--secrets-dir), the first admin from `user add`, behind a real HAProxy that terminates TLS. Checks what the
page promises: no admin, no start (and the message says how); Secure cookies and the proxy's view of the
client address behind the proxy (a forged X-Forwarded-For is not believed); a real VNC session over wss."""

from __future__ import annotations

import asyncio
import os
import secrets
import ssl
import subprocess
import sys
from pathlib import Path

import httpx
import websockets

from conftest import wait_for
from gui_recorder.protocol import Parser, encode
from gui_recorder.stack.checks import http_ok, port_free
from gui_recorder.stack.process import free_port

HAPROXY = """global
    maxconn 256
defaults
    mode http
    timeout connect 5s
    timeout client 1h
    timeout server 1h
    timeout tunnel 1h
frontend https
    bind 127.0.0.1:{https_port} ssl crt {pem}
    http-request set-header X-Forwarded-Proto https
    http-request set-header X-Forwarded-For %[src]
    default_backend gateway
backend gateway
    server gateway 127.0.0.1:{gateway_port}
"""


def _certificate(directory: Path) -> tuple[Path, Path]:
    key, cert = directory / "key.pem", directory / "cert.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj", "/CN=localhost",
                    "-addext", "subjectAltName=IP:127.0.0.1", "-keyout", str(key), "-out", str(cert)],
                   check=True, capture_output=True, timeout=60)
    pem = directory / "haproxy.pem"
    pem.write_bytes(cert.read_bytes() + key.read_bytes())
    pem.chmod(0o600)
    return pem, cert


def _cli(args: list[str], env: dict, **kw) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "gui_recorder.cli", *args], env=env, capture_output=True,
                          text=True, timeout=120, **kw)


def test_serve_behind_tls_with_secrets_from_files_and_the_first_admin_from_user_add(stack, tmp_path):
    etc = tmp_path / "etc"
    (etc / "secrets").mkdir(parents=True, mode=0o700)
    (etc / "secrets" / "GUI_RECORDER_SECRET_KEY").write_text(secrets.token_urlsafe(32))
    (etc / "secrets" / "GUI_RECORDER_S3_SECRET_KEY").write_text(stack.minio.secret_key)
    gateway_port, https_port = free_port(), free_port()
    env_file = etc / "gui-recorder.env"
    env_file.write_text("\n".join([
        "GUI_RECORDER_HOST=127.0.0.1", f"GUI_RECORDER_PORT={gateway_port}", "GUI_RECORDER_TRUSTED_PROXIES=127.0.0.1",
        f"GUI_RECORDER_VAR_DIR={tmp_path / 'var'}", f"GUI_RECORDER_GUACD_HOST={stack.guacd.host}",
        f"GUI_RECORDER_GUACD_PORT={stack.guacd.port}", f"GUI_RECORDER_S3_ENDPOINT={stack.minio.endpoint}",
        f"GUI_RECORDER_S3_ACCESS_KEY={stack.minio.access_key}", "GUI_RECORDER_API_DOCS=false", ""]))
    # No secret and no admin in the environment: only the files.
    # (The test costs of argon2, and no second factor for the admin: tests/test_totp.py covers that.)
    env = {k: v for k, v in os.environ.items() if not k.startswith("GUI_RECORDER_") or "HASH" in k}
    env["GUI_RECORDER_MFA_ROLES"] = "[]"
    base = ["--env-file", str(env_file), "--secrets-dir", str(etc / "secrets")]

    refused = _cli([*base, "serve"], env)
    assert refused.returncode != 0 and "gui-recorder user add" in refused.stderr, refused.stderr[-2000:]
    admin_pw = "first-admin-" + secrets.token_urlsafe(12)
    added = _cli([*base, "user", "add", "root", "--role", "admin"], env, input=admin_pw + "\n")
    assert added.returncode == 0, added.stderr

    pem, cert = _certificate(tmp_path)
    (tmp_path / "haproxy.cfg").write_text(HAPROXY.format(https_port=https_port, pem=pem, gateway_port=gateway_port))
    logs = open(tmp_path / "serve.log", "wb")
    serve = subprocess.Popen([sys.executable, "-m", "gui_recorder.cli", *base, "serve"], env=env, stdout=logs,
                             stderr=subprocess.STDOUT)
    proxy = subprocess.Popen(["haproxy", "-f", str(tmp_path / "haproxy.cfg"), "-db"], stdout=logs,
                             stderr=subprocess.STDOUT)
    try:
        wait_for(lambda: serve.poll() is not None or http_ok(f"http://127.0.0.1:{gateway_port}/api/health"), 60,
                 0.2, "the gateway")
        assert serve.poll() is None, (tmp_path / "serve.log").read_text()[-3000:]
        wait_for(lambda: proxy.poll() is not None or not port_free("127.0.0.1", https_port), 30, 0.1, "HAProxy")
        assert proxy.poll() is None, (tmp_path / "serve.log").read_text()[-3000:]
        url = f"https://127.0.0.1:{https_port}"
        with httpx.Client(base_url=url, verify=ssl.create_default_context(cafile=str(cert)), timeout=30) as https:
            login = https.post("/api/auth/login", json={"username": "root", "password": admin_pw},
                               headers={"X-Forwarded-For": "203.0.113.66"})
            assert login.status_code == 200, login.text
            cookie = login.headers["set-cookie"]
            assert "Secure" in cookie and "HttpOnly" in cookie, cookie
            https.headers["Authorization"] = f"Bearer {login.json()['token']}"
            events = https.get("/api/audit", params={"action": "auth.login"}).json()
            # The proxy's view of the client, not what the client claimed.
            assert [e["client_addr"] for e in events] == ["127.0.0.1"], events
            assert https.get("/openapi.json").status_code == 404  # api_docs=false, as production.md sets
            https.post("/api/admin/connections", json={
                "id": "prod-vnc", "name": "Production VNC", "protocol": "vnc", "host": stack.vnc.host,
                "port": stack.vnc.port, "password": stack.vnc.password}).raise_for_status()
            token = https.post("/api/connections/prod-vnc/tunnel-token").raise_for_status().json()["token"]
            session_id, synced = asyncio.run(_one_frame(url.replace("https", "wss") + f"/api/tunnel?token={token}",
                                                        cert))
            assert synced, "no frame from the desktop through the TLS proxy"
            row = wait_for(lambda: (r := https.get(f"/api/sessions/{session_id}").json())["status"] != "active"
                           and r, 30, 0.2, "the session's end")
            assert row["status"] == "ended" and row["client_addr"] == "127.0.0.1", row
        plain = httpx.post(f"http://127.0.0.1:{gateway_port}/api/auth/login",
                           json={"username": "root", "password": admin_pw})
        assert plain.status_code == 200 and "Secure" not in plain.headers["set-cookie"]
    finally:
        for proc in (proxy, serve):
            proc.terminate()
        for proc in (proxy, serve):
            try:
                proc.wait(30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(10)
        logs.close()


async def _one_frame(url: str, cert: Path) -> tuple[str, bool]:
    context = ssl.create_default_context(cafile=str(cert))
    parser = Parser()
    async with websockets.connect(url, subprotocols=["guacamole"], ssl=context, max_size=None) as ws:
        session_id = parser.feed_text(await asyncio.wait_for(ws.recv(), 30))[0][1]
        synced = False
        while not synced:
            for ins in parser.feed_text(await asyncio.wait_for(ws.recv(), 30)):
                assert ins[0] != "error", list(ins)
                if ins[0] == "sync":
                    await ws.send(encode(("sync", ins[1])))
                    synced = True
        await ws.send(encode(("disconnect",)))
    return session_id, synced
