"""Encrypted, authenticated links between components (issue 17, item 8): guacd over TLS.

The gateway sends the target's credentials to guacd in the `connect` instruction,
so guacd is reached over TLS (its own -C/-K) and its certificate verified before
a byte is sent. A local CA (gui_recorder.stack.certs) makes the certificates; the
guacd is a real one started with them, in front of the real demo VNC target.
"""

from __future__ import annotations

import pytest

from gui_recorder.errors import ConfigError, GuacdError, GuacdUntrusted
from gui_recorder.guacd import ClientInfo, ConnectionDefinition
from gui_recorder.guacd.pool import GuacdPool
from gui_recorder.settings import Settings
from gui_recorder.stack import Stack
from gui_recorder.stack.certs import LocalCA
from support.clients import TunnelClient
from support.peers import Peer


def settings(**fields) -> Settings:
    return Settings(secret_key="k" * 32, s3_secret_key="s" * 16, **fields)


def test_plaintext_links_to_other_hosts_are_refused_unless_allowed():
    assert settings().plaintext_links() == [], "the embedded default is all loopback"
    remote = settings(guacd_addresses="127.0.0.1:4822,10.0.0.7:4822", s3_endpoint="minio.internal:9000",
                      database_url="postgresql+psycopg://gr@db.internal/gr?sslmode=require")
    found = remote.plaintext_links()
    assert [f.split(" (")[0] for f in found] == ["guacd at 10.0.0.7:4822", "the object store at minio.internal:9000",
                                                 "PostgreSQL at db.internal"], found
    with pytest.raises(ConfigError, match="PLAINTEXT_LINKS_ALLOWED"):
        remote.check_links()
    settings(guacd_addresses="10.0.0.7:4822", plaintext_links_allowed=True).check_links()
    settings(guacd_addresses="[::1]:4822,localhost:4823", guacd_tls=False).check_links()
    secured = settings(guacd_addresses="10.0.0.7:4822", guacd_tls=True, s3_endpoint="minio.internal:9000",
                       s3_secure=True,
                       database_url="postgresql+psycopg://gr@db.internal/gr?sslmode=verify-full&sslrootcert=/ca")
    assert secured.plaintext_links() == []


@pytest.fixture(scope="module")
def tls_guacd(tmp_path_factory):
    """A real guacd speaking TLS with a certificate of a local CA, and a CA that did not sign it."""
    ca = LocalCA(tmp_path_factory.mktemp("ca"))
    other = LocalCA(tmp_path_factory.mktemp("other-ca"))
    with Stack(tmp_path_factory.mktemp("tls-guacd"), guacd=True, minio=False, vnc=False, rdp=False,
               guacd_tls=ca.issue("guacd"), guacd_ca=ca.cert_path) as running:
        yield running.info.guacd, ca, other


async def test_a_gateway_reaches_a_tls_guacd_and_refuses_one_it_cannot_verify(gateway, stack, tls_guacd, tmp_path):
    guacd, ca, other = tls_guacd
    address = f"{guacd.host}:{guacd.port}"
    with Peer.beside(gateway, tmp_path / "tls", GUI_RECORDER_GUACD_ADDRESSES=address, GUI_RECORDER_GUACD_TLS="true",
                     GUI_RECORDER_GUACD_CA_FILE=str(ca.cert_path)) as peer:
        with peer.api("vendor") as vendor:
            token = vendor.post("/api/connections/demo-vnc/tunnel-token").raise_for_status().json()["token"]
            health = vendor.get("/api/health").json()
        assert health["components"]["guacd"]["status"] == "ok", "the probe verifies and is answered over TLS"
        client = await TunnelClient.open(peer.url, token)
        try:
            await client.first_frame()  # the whole handshake, credentials included, went over TLS
        finally:
            await client.disconnect()

    # The same guacd with a CA that did not sign its certificate: nothing is sent, the user is told why.
    with Peer.beside(gateway, tmp_path / "untrusted", GUI_RECORDER_GUACD_ADDRESSES=address,
                     GUI_RECORDER_GUACD_TLS="true", GUI_RECORDER_GUACD_CA_FILE=str(other.cert_path)) as peer:
        with peer.api("vendor") as vendor:
            token = vendor.post("/api/connections/demo-vnc/tunnel-token").raise_for_status().json()["token"]
            health = vendor.get("/api/health").json()
        assert health["components"]["guacd"]["status"] == "down"
        client = await TunnelClient.open(peer.url, token)
        try:
            with pytest.raises(AssertionError, match="does not verify"):
                await client.first_frame(20)  # guacd's refusal, as the browser's `error` instruction
        finally:
            await client.close()
        assert "does not verify" in peer.log.read_text(), "a security event names the untrusted guacd"

    # Plaintext to a TLS guacd is no session either, and says what to check.
    pool = GuacdPool([(guacd.host, guacd.port)], connect_timeout=2, handshake_timeout=5)
    with pytest.raises(GuacdError) as plaintext:
        await pool.open(ConnectionDefinition("vnc", stack.vnc.guacd_parameters()), ClientInfo())
    assert not isinstance(plaintext.value, GuacdUntrusted), "guacd closed on our plaintext: not a certificate"


async def test_the_pool_passes_over_an_untrusted_guacd(stack, tls_guacd):
    guacd, ca, other = tls_guacd
    import ssl

    wrong = ssl.create_default_context(cafile=str(other.cert_path))
    pool = GuacdPool([(guacd.host, guacd.port)], connect_timeout=2, handshake_timeout=10, tls=wrong)
    with pytest.raises(GuacdUntrusted, match="does not verify"):
        await pool.open(ConnectionDefinition("vnc", stack.vnc.guacd_parameters()), ClientInfo())
    assert pool.is_down((guacd.host, guacd.port))
    right = GuacdPool([(guacd.host, guacd.port)], connect_timeout=2, handshake_timeout=10,
                      tls=ssl.create_default_context(cafile=str(ca.cert_path)))
    conn = await right.open(ConnectionDefinition("vnc", stack.vnc.guacd_parameters()), ClientInfo())
    try:
        assert conn.connection_id.startswith("$") and conn.address == (guacd.host, guacd.port)
    finally:
        await conn.close()
