"""Protocol-level readiness checks, one per component kind."""

from __future__ import annotations

import socket
import ssl
import subprocess
import urllib.request


def guacd_answers(host: str, port: int, tls: ssl.SSLContext | None = None) -> bool:
    """guacd answers ``select,vnc`` with ``args`` (over TLS, verified, when ``tls`` is given)."""
    with socket.create_connection((host, port), timeout=2) as raw, \
            (tls.wrap_socket(raw, server_hostname=host) if tls else raw) as s:
        s.sendall(b"6.select,3.vnc;")
        data = b""
        while b";" not in data:
            chunk = s.recv(4096)
            if not chunk:
                return False
            data += chunk
        return data.startswith(b"4.args,")


def rfb_banner(host: str, port: int) -> bool:
    """A VNC server greets with ``RFB 003.00x``."""
    with socket.create_connection((host, port), timeout=2) as s:
        return s.recv(12).startswith(b"RFB ")


# TPKT + X.224 Connection Request carrying an RDP negotiation request for TLS|CredSSP.
_X224_CR = bytes.fromhex("03000013" "0ee00000000000" "0100080003000000")


def rdp_negotiates(host: str, port: int) -> bool:
    """An RDP server answers an X.224 Connection Request with a Connection Confirm."""
    with socket.create_connection((host, port), timeout=2) as s:
        s.sendall(_X224_CR)
        reply = s.recv(64)
        return len(reply) >= 11 and reply[0] == 3 and reply[5] == 0xD0


def x_display_up(display: str) -> bool:
    return (
        subprocess.run(["xdpyinfo", "-display", display], capture_output=True, timeout=5).returncode == 0
    )


def x_window_shown(display: str, title: str) -> bool:
    """A window with this title is on ``display`` (the demo xterm connected and mapped)."""
    env = {"DISPLAY": display, "PATH": "/usr/bin:/bin"}
    return subprocess.run(["xdotool", "search", "--name", f"^{title}$"], env=env,
                          capture_output=True, timeout=5).returncode == 0


def x_display_owned(display: str, pid: int) -> bool:
    """The X server on ``display`` answers and is ours (its lock file holds our PID)."""
    try:
        with open(f"/tmp/.X{display.lstrip(':')}-lock") as lock:
            owner = int(lock.read().strip())
    except (OSError, ValueError):
        return False
    return owner == pid and x_display_up(display)


def minio_live(endpoint: str) -> bool:
    try:
        with urllib.request.urlopen(f"http://{endpoint}/minio/health/ready", timeout=2) as r:
            return r.status == 200
    except OSError:
        return False


def http_ok(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=2) as r:
            return r.status == 200
    except OSError:
        return False


def port_free(host: str, port: int) -> bool:
    """Nothing listens on ``host:port`` and a server may bind it.

    With SO_REUSEADDR, as servers (uvicorn, guacd, MinIO) bind: connections that
    ended a moment ago (TIME_WAIT) do not make a port taken, a listener does.
    """
    with socket.socket() as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind((host, port))
        except OSError:
            return False
        return True
