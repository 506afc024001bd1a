"""The demo SSH target: a real OpenSSH server with its own host key, config and login, on loopback.

Nothing system-wide is touched. sshd runs from a private config in the stack's
var dir (`/usr/sbin/sshd -D -f CONF -p PORT`) and lets in only the demo
account, by a key generated for this stack (its `authorized_keys` in the demo
account's private directory, since sshd reads it as that user) or by a random
password. The password lives in a shadow file of this stack alone, bind-mounted
over /etc/shadow in a mount namespace only this sshd sees: parallel stacks
(seven test runs on one machine) each have their own password, and the
system's shadow is never written.

Key types: guacd 1.3.0's libssh2 is built on libgcrypt, which speaks only
``ssh-rsa`` for host and user keys (no ECDSA, no Ed25519), and OpenSSH 9 turned
``ssh-rsa`` off by default: the config turns it back on for this target, and
the keys are RSA in PEM form (what libssh2-gcrypt reads).
"""

from __future__ import annotations

import os
import secrets
import shutil
import socket
import subprocess
from dataclasses import dataclass
from pathlib import Path

from gui_recorder.errors import ComponentError

SSHD = "/usr/sbin/sshd"


@dataclass(frozen=True)
class SshdFiles:
    config: Path
    shadow: Path | None  # bind-mounted over /etc/shadow (root only)
    host_key_line: str  # the host key as guacd's `host-key` wants it (a known_hosts line)
    private_key: str  # PEM, the demo login's key
    password: str | None


def ssh_banner(host: str, port: int) -> bool:
    """An SSH server greets with ``SSH-2.0-``."""
    with socket.create_connection((host, port), timeout=2) as s:
        return s.recv(8).startswith(b"SSH-2.0")


def _keygen(path: Path, comment: str) -> None:
    subprocess.run(["ssh-keygen", "-q", "-t", "rsa", "-b", "2048", "-m", "PEM", "-N", "", "-C", comment,
                    "-f", str(path)], check=True, capture_output=True, timeout=60)


def _crypt(password: str) -> str:
    return subprocess.run(["openssl", "passwd", "-6", "-stdin"], input=password, check=True, capture_output=True,
                          text=True, timeout=30).stdout.strip()


def prepare(directory: Path, keys_dir: Path, user: str, port: int, *, uid: int | None, gid: int | None,
            with_password: bool) -> SshdFiles:
    """Host key, the login's key and password, and the config, for an sshd on 127.0.0.1:``port``.

    ``keys_dir`` is readable by ``user`` (sshd opens authorized_keys as the user logging in).
    """
    if not Path(SSHD).is_file():
        raise ComponentError("OpenSSH's server is not installed (Debian: openssh-server; ./scripts/setup.sh)")
    directory.mkdir(parents=True, exist_ok=True, mode=0o700)
    host_key, user_key = directory / "ssh_host_rsa_key", directory / "demo_rsa_key"
    for path in (host_key, user_key):
        for stale in (path, path.with_suffix(".pub")):
            stale.unlink(missing_ok=True)
    _keygen(host_key, "gui-recorder demo host")
    _keygen(user_key, "gui-recorder demo login")
    authorized = keys_dir / "authorized_keys"
    authorized.write_text(user_key.with_suffix(".pub").read_text())
    authorized.chmod(0o600)
    if uid is not None:
        os.chown(authorized, uid, gid)
    shadow = password = None
    if with_password:
        password = "Ssh-" + secrets.token_urlsafe(12)
        shadow = directory / "shadow"
        # Only the demo account: this sshd never checks anyone else's password.
        shadow.write_text(f"{user}:{_crypt(password)}:20000:0:99999:7:::\n")
        shadow.chmod(0o600)
    config = directory / "sshd_config"
    config.write_text("\n".join([
        "ListenAddress 127.0.0.1",
        f"HostKey {host_key}",
        "PidFile none",
        f"AuthorizedKeysFile {authorized}",
        "StrictModes no",  # the keys file sits in a temporary directory, not under the user's home
        "UsePAM no",  # passwords from the (private) shadow file, no system PAM stack
        f"PasswordAuthentication {'yes' if with_password else 'no'}",
        "KbdInteractiveAuthentication no",
        "PubkeyAuthentication yes",
        "HostKeyAlgorithms +ssh-rsa",
        "PubkeyAcceptedAlgorithms +ssh-rsa",
        "PermitRootLogin no",
        f"AllowUsers {user}",
        "X11Forwarding no",
        "AllowTcpForwarding no",
        "PermitTunnel no",
        "PrintMotd no",
        "PrintLastLog no",
        "Subsystem sftp internal-sftp",
        "LogLevel VERBOSE",
        "",
    ]))
    host_public = host_key.with_suffix(".pub").read_text().split()
    # known_hosts form, as guacd matches it: a port other than 22 is written [host]:port.
    line = f"[127.0.0.1]:{port} {host_public[0]} {host_public[1]}"
    return SshdFiles(config, shadow, line, user_key.read_text(), password)


def argv(files: SshdFiles, port: int) -> list[str]:
    """The command: sshd in the foreground, logging to stderr; with a private shadow when there is a password."""
    sshd = [SSHD, "-D", "-e", "-f", str(files.config), "-p", str(port)]
    if files.shadow is None:
        return sshd
    # sshd needs its privilege-separation directory (Debian's unit creates it; we run no unit).
    Path("/run/sshd").mkdir(mode=0o755, exist_ok=True)
    script = 'mount --bind "$0" /etc/shadow && exec "$@"'
    return [shutil.which("unshare") or "unshare", "--mount", "--propagation", "private", "sh", "-c", script,
            str(files.shadow), *sshd]
