"""A real OpenLDAP slapd for the directory sign-in tests: private config, mdb database, a test tree.

Started on a free loopback port with ``-d 0`` (foreground, no system daemon), its tree loaded
with slapadd before it starts. It also speaks StartTLS with a certificate from a CA made here,
so the client's TLS path is tested against the real server. Stopped by PID.
"""

from __future__ import annotations

import base64
import datetime
import hashlib
import ipaddress
import os
import secrets
import socket
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from gui_recorder.stack.process import Managed, free_port

SUFFIX = "dc=example,dc=org"
ADMIN_DN = f"cn=admin,{SUFFIX}"
SERVICE_DN = f"cn=gui-recorder,ou=services,{SUFFIX}"
PEOPLE = f"ou=people,{SUFFIX}"
GROUPS = f"ou=groups,{SUFFIX}"


def ssha(password: str) -> str:
    """slapd's {SSHA} form: the directory stores no plaintext either."""
    salt = secrets.token_bytes(8)
    return "{SSHA}" + base64.b64encode(hashlib.sha1(password.encode() + salt).digest() + salt).decode()


def _name(cn: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])


def make_tls(directory: Path) -> tuple[Path, Path, Path]:
    """A CA and a server certificate for 127.0.0.1 signed by it: (ca.pem, server.pem, server.key)."""
    now = datetime.datetime.now(datetime.UTC)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca = (x509.CertificateBuilder().subject_name(_name("gui-recorder test CA")).issuer_name(_name("gui-recorder test CA"))
          .public_key(ca_key.public_key()).serial_number(x509.random_serial_number())
          .not_valid_before(now - datetime.timedelta(minutes=5)).not_valid_after(now + datetime.timedelta(days=2))
          .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
          .add_extension(x509.KeyUsage(digital_signature=True, key_cert_sign=True, crl_sign=True,
                                       content_commitment=False, key_encipherment=False, data_encipherment=False,
                                       key_agreement=False, encipher_only=False, decipher_only=False), critical=True)
          .sign(ca_key, hashes.SHA256()))
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (x509.CertificateBuilder().subject_name(_name("127.0.0.1")).issuer_name(ca.subject)
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=5)).not_valid_after(now + datetime.timedelta(days=2))
            .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1")),
                                                        x509.DNSName("localhost")]), critical=False)
            .add_extension(x509.ExtendedKeyUsage([x509.oid.ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
            .sign(ca_key, hashes.SHA256()))
    paths = directory / "ca.pem", directory / "server.pem", directory / "server.key"
    paths[0].write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    paths[1].write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    paths[2].write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    os.chmod(paths[2], 0o600)
    return paths


@dataclass
class DirectoryInfo:
    url: str
    port: int
    ldaps_url: str  # the same directory over TLS from the first byte
    ca_file: Path
    admin_dn: str
    admin_password: str
    service_dn: str
    service_password: str
    people: str = PEOPLE
    groups: str = GROUPS
    passwords: dict[str, str] = field(default_factory=dict)  # uid -> password

    def user_dn(self, uid: str) -> str:
        return f"uid={uid},{self.people}"

    def group_dn(self, cn: str) -> str:
        return f"cn={cn},{self.groups}"


# uid -> the groups they are in. `gr-operators` is mapped to no role by the tests on purpose.
TREE = {"alice": ["gr-admins"], "bob": ["gr-vendors"], "carol": ["gr-auditors", "gr-vendors"],
        "dave": ["staff"]}


def _ldif(info: DirectoryInfo) -> str:
    entries = [
        f"dn: {SUFFIX}\nobjectClass: dcObject\nobjectClass: organization\ndc: example\no: Example\n",
        f"dn: ou=people,{SUFFIX}\nobjectClass: organizationalUnit\nou: people\n",
        f"dn: ou=groups,{SUFFIX}\nobjectClass: organizationalUnit\nou: groups\n",
        f"dn: ou=services,{SUFFIX}\nobjectClass: organizationalUnit\nou: services\n",
        f"dn: {SERVICE_DN}\nobjectClass: organizationalRole\nobjectClass: simpleSecurityObject\n"
        f"cn: gui-recorder\nuserPassword: {ssha(info.service_password)}\n",
    ]
    for uid in TREE:
        entries.append(f"dn: {info.user_dn(uid)}\nobjectClass: inetOrgPerson\nuid: {uid}\ncn: {uid.title()}\n"
                       f"sn: {uid.title()}\nmail: {uid}@example.org\nuserPassword: {ssha(info.passwords[uid])}\n")
    for group in sorted({g for gs in TREE.values() for g in gs}):
        members = "".join(f"member: {info.user_dn(uid)}\n" for uid, gs in TREE.items() if group in gs)
        entries.append(f"dn: {info.group_dn(group)}\nobjectClass: groupOfNames\ncn: {group}\n{members}")
    return "\n".join(entries)


def _config(root: Path, info: DirectoryInfo, ca: Path, cert: Path, key: Path) -> str:
    schema = Path("/etc/ldap/schema")
    return f"""
include {schema / 'core.schema'}
include {schema / 'cosine.schema'}
include {schema / 'inetorgperson.schema'}
modulepath /usr/lib/ldap
moduleload back_mdb
pidfile {root / 'slapd.pid'}
argsfile {root / 'slapd.args'}
TLSCACertificateFile {ca}
TLSCertificateFile {cert}
TLSCertificateKeyFile {key}
database mdb
maxsize 16777216
suffix "{SUFFIX}"
rootdn "{ADMIN_DN}"
rootpw {ssha(info.admin_password)}
directory {root / 'db'}
access to attrs=userPassword by self write by anonymous auth by * none
access to * by users read by * none
"""


class Slapd:
    def __init__(self, root: Path):
        self.root = root
        self.proc: Managed | None = None

    def __enter__(self) -> DirectoryInfo:
        root = self.root
        (root / "db").mkdir(parents=True)
        ca, cert, key = make_tls(root)
        port, tls_port = free_port(), free_port()
        self.info = info = DirectoryInfo(
            url=f"ldap://127.0.0.1:{port}", port=port, ldaps_url=f"ldaps://127.0.0.1:{tls_port}", ca_file=ca,
            admin_dn=ADMIN_DN,
            admin_password=secrets.token_urlsafe(12), service_dn=SERVICE_DN,
            service_password=secrets.token_urlsafe(12),
            passwords={uid: f"{uid}-{secrets.token_urlsafe(8)}" for uid in TREE})
        conf = root / "slapd.conf"
        conf.write_text(_config(root, info, ca, cert, key))
        (root / "tree.ldif").write_text(_ldif(info))
        subprocess.run(["/usr/sbin/slapadd", "-f", str(conf), "-l", str(root / "tree.ldif")], check=True,
                       capture_output=True)
        self.proc = Managed("slapd", ["/usr/sbin/slapd", "-h", f"ldap://127.0.0.1:{port}/ ldaps://127.0.0.1:{tls_port}/",
                                      "-f", str(conf),
                                      "-d", "0"], root / "logs")
        self.proc.wait_ready(lambda: _accepts(port) and _accepts(tls_port), timeout=30)
        return info

    def __exit__(self, *exc) -> None:
        if self.proc:
            self.proc.stop()


def _accepts(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5):
            return True
    except OSError:
        return False
