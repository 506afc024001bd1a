"""The audit sinks without a receiver process: formats, the spool, delivery order through outages, drops,
file rotation, and the HTTP shapes (against a local HTTP receiver stand-in, named as such below)."""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from conftest import wait_for
from gui_recorder.settings import AuditSinkSettings
from gui_recorder.siem import formats
from gui_recorder.siem.delivery import Delivery
from gui_recorder.siem.spool import Spool
from gui_recorder.siem.transports import SinkDown, Transport


def event(seq: int, **extra) -> dict:
    return {"id": seq, "seq": seq, "at": "2026-12-01T10:00:00.123456+00:00", "username": "vendor",
            "action": "session.start", "target": "s-1", "client_addr": "127.0.0.1", "detail": {},
            "prev_hash": "0" * 64, "hash": f"{seq:064x}", **extra}


def test_cef_escapes_what_would_break_its_fields():
    line = formats.cef(event(7, username="a|b=c\\d\nx", detail={"reason": "x=1\nnext"}, action="weird|act"))
    extension = line.split("|", 7)[7]
    assert line.startswith("CEF:0|gui-recorder|gui-recorder|0.1.0|weird\\|act|weird\\|act|3|")
    assert "suser=a|b\\=c\\\\d\\nx " in extension  # a raw line break becomes \n
    assert 'cs2={"reason":"x\\=1\\\\nnext"}' in extension  # JSON's own \n, its backslash escaped
    assert "\n" not in line and "externalId=7" in line and "cn1=7" in line and f"cs3={7:064x}" in line


def test_cef_severity_and_names_follow_the_documented_table():
    from pathlib import Path

    page = (Path(__file__).resolve().parent.parent / "docs" / "siem.md").read_text()
    assert "|9|" in formats.cef(event(1, action="security.violation"))
    assert "outcome=failure" in formats.cef(event(1, action="auth.login_failed"))
    assert "shost=proxy.local" in formats.cef(event(1, client_addr="proxy.local"))
    for field in ("rt", "act", "cat", "externalId", "suser", "src", "cs1", "cs2", "cn1", "cs3", "cs4", "dvchost"):
        assert f"`{field}" in page, f"docs/siem.md does not map {field}"


def test_an_rfc5424_message_and_its_octet_count():
    msg = formats.syslog_message(event(3), "CEF:0|x", hostname="gw1")
    assert msg.startswith(b"<110>1 2026-12-01T10:00:00.123456Z gw1 gui-recorder ")  # 13*8+6
    assert b' session.start [gr@32473 seq="3" hash="' in msg and msg.endswith(b"] CEF:0|x")
    framed = formats.octet_counted(msg)
    length, _, rest = framed.partition(b" ")
    assert int(length) == len(rest) == len(msg)
    assert formats.syslog_message(event(1, action="security.violation"), "m").startswith(b"<106>1 ")


def test_the_spool_keeps_order_across_a_restart_and_a_resend(tmp_path):
    spool, lock = Spool.claim(tmp_path, 1 << 20)
    assert spool.append([event(i) for i in range(1, 6)]) == []
    batch, length = spool.peek(2)
    spool.commit(len(batch), length)
    spool.prepend([event(2)])  # an unconfirmed one, back in front
    spool.close()
    lock.close()
    again, lock = Spool.claim(tmp_path, 1 << 20)
    assert again.dir == spool.dir  # the same slot: a restarted process takes its leftovers back
    assert [e["seq"] for e in again.peek(100)[0]] == [2, 3, 4, 5] and again.pending == 4
    other, other_lock = Spool.claim(tmp_path, 1 << 20)  # a second live process gets its own slot
    assert other.dir != again.dir and other.pending == 0
    for s, lk in ((again, lock), (other, other_lock)):
        s.close()
        lk.close()


def test_a_full_spool_refuses_and_says_what(tmp_path):
    spool, lock = Spool.claim(tmp_path, 1 << 16)
    line = len(json.dumps(event(1000), separators=(",", ":"))) + 1  # every seq here has 4 digits
    fits = (1 << 16) // line
    lost = spool.append([event(1000 + i) for i in range(fits + 5)])
    assert len(lost) == 5 and spool.pending == fits
    spool.close()
    lock.close()


class FlakySink(Transport):
    """A sink stand-in that injects outages (the real receivers are tested in test_siem_rsyslog.py):
    refuses while ``down`` is set, records what it takes."""

    def __init__(self):
        self.down = threading.Event()
        self.gate = threading.Event()
        self.gate.set()
        self.taken: list[int] = []

    def send(self, events):
        self.gate.wait(30)
        if self.down.is_set():
            raise SinkDown("injected outage")
        self.taken.extend(e["seq"] for e in events)


def _sink(**kw) -> AuditSinkSettings:
    return AuditSinkSettings(**{"name": "t", "kind": "file", "path": "/nonexistent", "retry_max_seconds": 0.05,
                                **kw})


def test_an_outage_spools_then_delivers_everything_in_order(tmp_path):
    flaky = FlakySink()
    d = Delivery(_sink(), tmp_path, flaky)
    d.start()
    for i in range(1, 51):
        d.offer(event(i))
    assert d.wait_idle(10)
    flaky.down.set()
    for i in range(51, 2001):
        d.offer(event(i))
    wait_for(lambda: d.snapshot().spooled > 1000, 10, 0.02, "the outage to spool")
    assert not d.snapshot().up
    flaky.down.clear()
    for i in range(2001, 2101):
        d.offer(event(i))
    assert d.wait_idle(20)
    d.close()
    assert flaky.taken == list(range(1, 2101))
    h = d.snapshot()
    assert h.dropped == 0 and h.spooled == 0 and h.delivered == 2100 and h.up and h.failures >= 1


def test_a_stopped_process_leaves_its_spool_for_the_next(tmp_path):
    flaky = FlakySink()
    flaky.down.set()
    d = Delivery(_sink(), tmp_path, flaky)
    d.start()
    for i in range(1, 11):
        d.offer(event(i))
    d.close()  # the sink is still down: the events stay on disk
    back = FlakySink()
    d2 = Delivery(_sink(), tmp_path, back)
    d2.start()
    d2.offer(event(11))
    assert d2.wait_idle(10)
    d2.close()
    assert back.taken == list(range(1, 12))


def test_offer_never_blocks_and_a_full_queue_counts_its_drops(tmp_path):
    flaky = FlakySink()
    flaky.gate.clear()  # the sink hangs (a receiver that accepts and never reads)
    d = Delivery(_sink(queue_size=10), tmp_path, flaky)
    d.start()
    for i in range(100):
        d.offer(event(i))  # returns at once even though nothing moves
    assert d.snapshot().dropped >= 80
    flaky.gate.set()
    d.close()


def test_the_file_sink_rotates(tmp_path):
    from gui_recorder.siem.transports import JsonLinesFile

    path = tmp_path / "audit.jsonl"
    sink = JsonLinesFile(_sink(path=str(path), max_bytes=2048, backups=2))
    for i in range(1, 41):
        sink.send([event(i)])
    files = [path.with_name("audit.jsonl.2"), path.with_name("audit.jsonl.1"), path]
    assert all(f.exists() for f in files) and not path.with_name("audit.jsonl.3").exists()
    seqs = [json.loads(x)["seq"] for f in files for x in f.read_text().splitlines()]
    assert seqs == sorted(seqs) and seqs[-1] == 40 and all(f.stat().st_size <= 2048 for f in files)


class _Receiver(BaseHTTPRequestHandler):
    """A Splunk HEC / Elastic _bulk receiver stand-in: no Splunk or Elastic installs here. It checks
    the request shape and fails on demand."""

    answers: list[int] = []
    seen: list[tuple[str, dict, bytes]] = []

    def do_POST(self):  # noqa: N802 - http.server's name
        body = self.rfile.read(int(self.headers["Content-Length"]))
        self.seen.append((self.path, dict(self.headers), body))
        status = self.answers.pop(0) if self.answers else 200
        if "_bulk" in self.path and status == 200:
            items = [{"create": {"status": 409 if i == 0 else 201}} for i in range(body.count(b'"create"'))]
            payload = json.dumps({"errors": True, "items": items}).encode()
        else:
            payload = b'{"text":"Success","code":0}' if status == 200 else b'{"text":"busy"}'
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    def log_message(self, *args):
        pass


@pytest.fixture
def receiver():
    _Receiver.answers, _Receiver.seen = [], []
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Receiver)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}", _Receiver
    server.shutdown()
    server.server_close()


def test_splunk_hec_gets_its_shape_and_a_503_is_retried(tmp_path, receiver):
    url, rx = receiver
    rx.answers = [503]
    d = Delivery(_sink(kind="http", url=url + "/services/collector/event", token="hec-token", path=None),
                 tmp_path)
    d.start()
    d.offer(event(1))
    d.offer(event(2))
    assert d.wait_idle(10)
    d.close()
    assert len(rx.seen) >= 2
    path, headers, body = rx.seen[-1]
    assert path == "/services/collector/event" and headers["Authorization"] == "Splunk hec-token"
    docs = [json.loads(x) for x in body.decode().replace("}{", "}\n{").splitlines()]
    delivered = [json.loads(x)["event"]["seq"] for _, _, b in rx.seen[1:]
                 for x in b.decode().replace("}{\"time", "}\n{\"time").splitlines()]
    assert delivered == [1, 2] and docs[0]["sourcetype"] == "gui-recorder:audit"


def test_elastic_bulk_uses_the_hash_as_id_and_counts_conflicts_as_delivered(tmp_path, receiver):
    url, rx = receiver
    d = Delivery(_sink(kind="http", flavour="elastic", url=url + "/audit/_bulk", token="key", path=None), tmp_path)
    d.start()
    d.offer(event(5))
    d.offer(event(6))
    assert d.wait_idle(10)
    d.close()
    _, headers, body = rx.seen[-1]
    lines = [json.loads(x) for x in body.decode().splitlines()]
    assert headers["Authorization"] == "ApiKey key" and lines[0] == {"create": {"_id": f"{5:064x}"}}
    assert d.snapshot().delivered == 2 and d.snapshot().failures == 0
