"""A real rsyslog (Debian's rsyslogd) on loopback: UDP, TCP and TLS inputs, everything written to one file.

Private config, work directory, PID file and a test CA made here with ``cryptography``;
never the system daemon. Each line of ``out.log`` is what rsyslog itself parsed:
input name, RFC 5424 version, MSGID, APP-NAME, structured data, message, so a line
shows rsyslog understood the frame as RFC 5424 (version 1), not only that bytes arrived.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import os
import signal
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

from gui_recorder.stack.process import free_port

RSYSLOGD = "/usr/sbin/rsyslogd"

CONFIG = """\
global(workDirectory="{dir}" DefaultNetstreamDriverCAFile="{dir}/ca.pem"
       DefaultNetstreamDriverCertFile="{dir}/server.pem" DefaultNetstreamDriverKeyFile="{dir}/server.key"
       maxMessageSize="64k")
module(load="imudp")
module(load="imtcp" MaxSessions="200")
template(name="parsed" type="string"
         string="%inputname%\\t%protocol-version%\\t%msgid%\\t%app-name%\\t%structured-data%\\t%msg%\\n")
ruleset(name="audit") {{ action(type="omfile" file="{dir}/out.log" template="parsed" flushOnTXEnd="on") }}
input(type="imudp" address="127.0.0.1" port="{udp}" ruleset="audit" name="udp")
input(type="imtcp" address="127.0.0.1" port="{tcp}" ruleset="audit" name="tcp")
input(type="imtcp" address="127.0.0.1" port="{tls}" ruleset="audit" name="tls"
      StreamDriver.Name="gtls" StreamDriver.Mode="1" StreamDriver.AuthMode="anon")
"""


def make_ca(directory: Path) -> None:
    """A CA and a server certificate for 127.0.0.1, P-256, valid for a day."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    now = dt.datetime.now(dt.UTC)

    def name(cn: str) -> x509.Name:
        return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])

    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca = (x509.CertificateBuilder().subject_name(name("gui-recorder test CA")).issuer_name(name("gui-recorder test CA"))
          .public_key(ca_key.public_key()).serial_number(x509.random_serial_number())
          .not_valid_before(now - dt.timedelta(minutes=5)).not_valid_after(now + dt.timedelta(days=1))
          .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
          .add_extension(x509.KeyUsage(digital_signature=True, key_cert_sign=True, crl_sign=True,
                                       content_commitment=False, key_encipherment=False, data_encipherment=False,
                                       key_agreement=False, encipher_only=False, decipher_only=False),
                         critical=True)
          .sign(ca_key, hashes.SHA256()))
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (x509.CertificateBuilder().subject_name(name("127.0.0.1")).issuer_name(ca.subject)
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(minutes=5)).not_valid_after(now + dt.timedelta(days=1))
            .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1")),
                                                        x509.DNSName("localhost")]), critical=False)
            .add_extension(x509.ExtendedKeyUsage([x509.oid.ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
            .sign(ca_key, hashes.SHA256()))
    pem = serialization.Encoding.PEM
    (directory / "ca.pem").write_bytes(ca.public_bytes(pem))
    (directory / "server.pem").write_bytes(cert.public_bytes(pem))
    (directory / "server.key").write_bytes(key.private_bytes(pem, serialization.PrivateFormat.PKCS8,
                                                             serialization.NoEncryption()))
    os.chmod(directory / "server.key", 0o600)


@dataclass
class Line:
    input: str
    version: str
    msgid: str
    app: str
    sd: str
    msg: str


class Rsyslog:
    def __init__(self, directory: Path):
        self.dir = directory
        directory.mkdir(parents=True, exist_ok=True)
        self.udp, self.tcp, self.tls = free_port(), free_port(), free_port()
        self.ca_file = str(directory / "ca.pem")
        self.out = directory / "out.log"
        self.proc: subprocess.Popen | None = None
        make_ca(directory)
        (directory / "rsyslog.conf").write_text(CONFIG.format(dir=directory, udp=self.udp, tcp=self.tcp, tls=self.tls))

    def start(self) -> None:
        log = open(self.dir / "rsyslogd.log", "ab")
        self.proc = subprocess.Popen([RSYSLOGD, "-n", "-f", str(self.dir / "rsyslog.conf"), "-i",
                                      str(self.dir / "rsyslogd.pid")], stdout=log, stderr=subprocess.STDOUT)
        log.close()
        deadline = time.monotonic() + 60  # a loaded 2-core machine: TLS set-up can take a while
        while not self._listening():
            if self.proc.poll() is not None or time.monotonic() > deadline:
                self.stop()  # never left running behind a failed start
                raise AssertionError(f"rsyslogd did not open its ports: {(self.dir / 'rsyslogd.log').read_text()}")
            time.sleep(0.05)

    def _listening(self) -> bool:
        import socket

        for port in (self.tcp, self.tls):
            with socket.socket() as s:
                if s.connect_ex(("127.0.0.1", port)) != 0:
                    return False
        return True

    def kill(self) -> None:
        """SIGKILL: no flush, no goodbye, as a crash."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(10)
        (self.dir / "rsyslogd.pid").unlink(missing_ok=True)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)

    def lines(self) -> list[Line]:
        if not self.out.exists():
            return []
        rows = []
        for raw in self.out.read_text(encoding="utf-8", errors="replace").splitlines():
            parts = raw.split("\t", 5)
            if len(parts) == 6:
                rows.append(Line(*parts))
        return rows
