"""Audit events reach a real rsyslog (issue 18): a whole session's life, in order, as RFC 5424 + CEF and
JSON, and nothing lost while rsyslog is killed and started again; the same session's trace over OTLP.

The gateway here is a second one on the shared real stack (guacd, the VNC target, MinIO), configured
with four sinks: CEF over TCP, JSON over TLS (a CA the fixture makes), CEF over UDP, and a JSON-lines file;
and with traces to an OTLP/HTTP receiver stand-in (tests/support/otlp.py: no collector installs here),
as is its own real worker process (render and index jobs).
"""

from __future__ import annotations

import asyncio
import json
import re
import secrets
import threading
from datetime import datetime

import pytest

from conftest import Gateway, wait_for
from support.otlp import OtlpReceiver
from support.rsyslog import Rsyslog
from support.sessions import drive_session

pytestmark = pytest.mark.stack

CEF_EXT = re.compile(r"(\w+)=((?:[^\\= ]|\\.)*(?: (?!\w+=)(?:[^\\= ]|\\.)*)*)")


def cef_fields(msg: str) -> tuple[list[str], dict[str, str]]:
    """The seven header fields and the extension of one CEF message (escapes undone)."""
    assert msg.startswith("CEF:0|"), msg
    header, rest = [], msg[len("CEF:"):]
    field = ""
    i = 0
    while len(header) < 7:
        c = rest[i]
        if c == "\\":
            field += rest[i + 1]
            i += 2
            continue
        if c == "|":
            header.append(field)
            field = ""
        else:
            field += c
        i += 1
    ext = {k: re.sub(r"\\(.)", r"\1", v).replace("\\n", "\n") for k, v in CEF_EXT.findall(rest[i:])}
    return header, ext


@pytest.fixture(scope="session")
def rsyslog(tmp_path_factory):
    server = Rsyslog(tmp_path_factory.mktemp("rsyslog"))
    server.start()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def otlp():
    with OtlpReceiver() as receiver:
        yield receiver


@pytest.fixture(scope="module")
def siem_gateway(stack, rsyslog, otlp, tmp_path_factory):
    import uvicorn

    from gui_recorder.gateway.app import create_app
    from gui_recorder.settings import Settings
    from gui_recorder.stack.checks import http_ok
    from gui_recorder.stack.demo import seed_demo
    from gui_recorder.stack.process import free_port

    var = tmp_path_factory.mktemp("siem-gateway")
    accounts = {role: f"{role}-{secrets.token_urlsafe(8)}" for role in ("admin", "operator", "vendor", "auditor")}
    common = {"retry_max_seconds": 0.5, "host": "127.0.0.1"}
    sinks = [
        {"name": "cef-tcp", "kind": "syslog", "transport": "tcp", "port": rsyslog.tcp, "format": "cef", **common},
        {"name": "json-tls", "kind": "syslog", "transport": "tls", "port": rsyslog.tls, "format": "json",
         "ca_file": rsyslog.ca_file, **common},
        {"name": "cef-udp", "kind": "syslog", "transport": "udp", "port": rsyslog.udp, "format": "cef", **common},
        {"name": "file", "kind": "file", "path": str(var / "audit.jsonl"), "max_bytes": 1 << 20},
    ]
    settings = Settings(
        var_dir=var, port=free_port(), secret_key=secrets.token_urlsafe(32), admin_password=accounts["admin"],
        guacd_host=stack.guacd.host, guacd_port=stack.guacd.port, s3_endpoint=stack.minio.endpoint,
        s3_access_key=stack.minio.access_key, s3_secret_key=stack.minio.secret_key, segment_max_seconds=2.0,
        tiers=[{"name": "hot", "bucket": "siem-hot"}, {"name": "cold", "bucket": "siem-cold", "after_days": 30}],
        audit_sinks=sinks, otel_endpoint=otlp.url, otel_service_name="gr-test",
    )
    connections = seed_demo(settings, stack, accounts)
    app = create_app(settings)
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=settings.port, log_level="warning",
                                           lifespan="on", ws_per_message_deflate=False))
    thread = threading.Thread(target=server.run, name="siem-gateway", daemon=True)
    thread.start()
    url = f"http://127.0.0.1:{settings.port}/"
    wait_for(lambda: http_ok(url + "api/health") or not thread.is_alive(), 30, 0.05, "the gateway")
    assert thread.is_alive()
    yield Gateway(url, settings, app, accounts, connections)
    server.should_exit = True
    thread.join(30)


@pytest.fixture(scope="module")
def siem_worker(siem_gateway):
    """The siem gateway's own real worker process (render and index jobs, traced)."""
    import os
    import subprocess
    import sys

    from gui_recorder.cli import settings_env

    log = open(siem_gateway.settings.var_dir / "worker.log", "ab")
    env = {**os.environ, **settings_env(siem_gateway.settings), "GUI_RECORDER_WORKER_LEASE_SECONDS": "5",
           "GUI_RECORDER_TIERING_INTERVAL_SECONDS": "1000000"}
    proc = subprocess.Popen([sys.executable, "-m", "gui_recorder.cli", "worker"], env=env, stdout=log,
                            stderr=subprocess.STDOUT)
    yield proc
    proc.terminate()
    proc.wait(30)
    log.close()


def _stream(gateway):
    return gateway.app.state.services.db.audit_stream


def _export(gateway) -> list[dict]:
    with gateway.api("admin") as admin:
        resp = admin.get("/api/audit/export")
        resp.raise_for_status()
        return [json.loads(line) for line in resp.text.splitlines()]


def _by_input(rsyslog, name: str):
    return [line for line in rsyslog.lines() if line.input == name]


def _seq_of_cef(line) -> int:
    return int(cef_fields(line.msg)[1]["cn1"])


LIFE: dict = {}  # the session the first test drives, for the trace test


def test_a_session_life_arrives_as_rfc5424_cef_and_json_in_order(siem_gateway, siem_worker, rsyslog):
    connection = next(c for c in siem_gateway.connections if c["protocol"] == "vnc")["id"]
    session_id = asyncio.run(drive_session(siem_gateway, connection, "echo siem\n", seconds=1.0))
    LIFE.update(session_id=session_id, connection=connection)
    with siem_gateway.api("auditor") as auditor:
        auditor.get(f"/api/sessions/{session_id}").raise_for_status()
    events = _export(siem_gateway)
    life = [e for e in events if e["action"] in ("auth.login", "connection.token", "session.start", "session.view",
                                                 "session.end") and e["username"] in ("vendor", "auditor")]
    mine = [e for e in life if e["target"] in (session_id, None, connection)]
    actions = [(e["username"], e["action"]) for e in mine]
    # The whole life, as the database has it: the vendor signs in, takes a token, the session starts and
    # ends; the auditor signs in and views it.
    for step in [("vendor", "auth.login"), ("vendor", "connection.token"), ("vendor", "session.start"),
                 ("vendor", "session.end"), ("auditor", "auth.login"), ("auditor", "session.view")]:
        assert step in actions, (step, actions)
    last = max(e["seq"] for e in events)
    assert _stream(siem_gateway).wait_idle(30)
    wanted = {e["seq"]: e for e in mine}

    # CEF over TCP: rsyslog parsed every frame as RFC 5424 (version 1, our MSGID and APP-NAME).
    tcp = wait_for(lambda: (rows := _by_input(rsyslog, "tcp")) and _seq_of_cef(rows[-1]) >= last and rows,
                   30, 0.2, "the CEF/TCP events at rsyslog")
    seqs = [_seq_of_cef(r) for r in tcp]
    assert seqs == sorted(seqs) and len(set(seqs)) == len(seqs), seqs  # in order, each once
    arrived = {s: r for s, r in zip(seqs, tcp)}
    for seq, event in wanted.items():
        line = arrived[seq]
        assert line.version == "1" and line.app == "gui-recorder" and line.msgid == event["action"], line
        assert f'seq="{seq}"' in line.sd and f'hash="{event["hash"]}"' in line.sd, line.sd
        header, ext = cef_fields(line.msg)
        assert header[:6] == ["0", "gui-recorder", "gui-recorder", "0.1.0", event["action"], header[5]]
        assert ext["act"] == event["action"] and ext["cs3"] == event["hash"] and ext["cs4"] == event["prev_hash"]
        assert ext.get("suser") == event["username"] and ext.get("cs1") == event["target"]
        assert ext["src"] == event["client_addr"] == "127.0.0.1"
        assert int(ext["rt"]) == int(datetime.fromisoformat(event["at"]).timestamp() * 1000)
    start = next(e for e in mine if e["action"] == "session.start")
    assert cef_fields(arrived[start["seq"]].msg)[0][5] == "Session started"

    # JSON over TLS: the same events, each the exported record with its chain hashes.
    tls = wait_for(lambda: (rows := _by_input(rsyslog, "tls")) and json.loads(rows[-1].msg)["seq"] >= last and rows,
                   30, 0.2, "the JSON/TLS events at rsyslog")
    docs = [json.loads(r.msg) for r in tls]
    assert [d["seq"] for d in docs] == sorted({d["seq"] for d in docs})
    by_seq = {d["seq"]: d for d in docs}
    for seq, event in wanted.items():
        assert {k: by_seq[seq][k] for k in event} == event

    # UDP carries the same messages (loopback drops none here, but UDP promises nothing), and the file sink.
    udp_seqs = {_seq_of_cef(r) for r in _by_input(rsyslog, "udp")}
    assert set(wanted) <= udp_seqs
    lines = [json.loads(x) for x in (siem_gateway.settings.var_dir / "audit.jsonl").read_text().splitlines()]
    assert [x["seq"] for x in lines] == sorted(x["seq"] for x in lines) and set(wanted) <= {x["seq"] for x in lines}


def test_rsyslog_killed_and_restarted_loses_nothing(siem_gateway, rsyslog):
    from gui_recorder.gateway.audit import record_event

    db = siem_gateway.app.state.services.db
    stream = _stream(siem_gateway)
    assert stream.wait_idle(30)
    stop = threading.Event()
    recorded: list[int] = []

    def health() -> dict:
        return {x.name: x for x in stream.health()}

    def load() -> None:  # a steady trickle of real events, about 50 a second
        n = 0
        while not stop.is_set():
            record_event(db, "load", "session.view", f"outage-{n}", "127.0.0.1", {"n": n})
            n += 1
            recorded.append(n)
            stop.wait(0.02)

    writer = threading.Thread(target=load, name="audit-load")
    writer.start()
    try:
        wait_for(lambda: len(recorded) > 20, 10, 0.05, "events before the outage")
        rsyslog.kill()
        wait_for(lambda: not (h := health())["cef-tcp"].up and not h["json-tls"].up and h["cef-tcp"].spooled,
                 20, 0.05, "both stream sinks to notice and spool")
        wait_for(lambda: len(recorded) > 150, 20, 0.05, "events during the outage")  # about 3 s down
        rsyslog.start()
        wait_for(lambda: (h := health())["cef-tcp"].up and h["json-tls"].up, 20, 0.05, "the sinks back up")
        marker = len(recorded)
        wait_for(lambda: len(recorded) > marker + 20, 10, 0.05, "events after the outage")
    finally:
        stop.set()
        writer.join(10)
    assert stream.wait_idle(60)
    expected = {e["seq"]: e for e in _export(siem_gateway) if e["action"] == "session.view"
                and (e["target"] or "").startswith("outage-")}
    assert len(expected) == len(recorded)
    top = max(expected)
    tcp = wait_for(lambda: (rows := _by_input(rsyslog, "tcp")) and max(map(_seq_of_cef, rows)) >= top and rows,
                   30, 0.2, "the outage's events over TCP")
    tls = wait_for(lambda: (rows := _by_input(rsyslog, "tls")) and max(json.loads(r.msg)["seq"] for r in rows) >= top
                   and rows, 30, 0.2, "the outage's events over TLS")
    for name, seqs in (("tcp", [_seq_of_cef(r) for r in tcp]), ("tls", [json.loads(r.msg)["seq"] for r in tls])):
        got = [s for s in seqs if s in expected]
        missing = sorted(set(expected) - set(got))
        assert not missing, f"{name}: {len(missing)} events lost: {missing[:10]}"
        # In order: each event first arrives after every earlier one (a resent tail repeats, never jumps back
        # before its first arrival).
        first = list(dict.fromkeys(got))
        assert first == sorted(first), f"{name}: out of order"
    h = health()
    assert h["cef-tcp"].dropped == 0 and h["json-tls"].dropped == 0
    assert h["cef-tcp"].failures >= 1 and h["cef-tcp"].delivered >= len(expected) and h["cef-tcp"].spooled == 0


def test_sink_health_on_the_ops_api_and_in_metrics(siem_gateway):
    import httpx

    with siem_gateway.api("admin") as admin:
        # After the sign-in: its own audit event is queued for the sinks too (a CI run saw it queued).
        assert _stream(siem_gateway).wait_idle(30)
        report = admin.get("/api/ops/audit-sinks").raise_for_status().json()
    sinks = {s["name"]: s for s in report["sinks"]}
    assert set(sinks) == {"cef-tcp", "json-tls", "cef-udp", "file"}
    assert sinks["cef-tcp"]["up"] and sinks["cef-tcp"]["queued"] == 0 and sinks["cef-tcp"]["delivered"] > 0
    assert sinks["cef-tcp"]["last_success"] and report["chain"]["seq"] > 0
    with siem_gateway.api("vendor") as vendor:
        assert vendor.get("/api/ops/audit-sinks").status_code == 403
    text = httpx.get(siem_gateway.url + "metrics").raise_for_status().text
    assert 'gr_audit_sink_up{sink="json-tls"} 1.0' in text
    assert 'gr_audit_sink_dropped_total{sink="cef-tcp"} 0.0' in text
    assert 'gr_audit_sink_queue_depth{sink="file"} 0.0' in text


def test_the_session_trace_arrives_over_otlp(siem_gateway, siem_worker, otlp):
    """Sign-in, token, the tunnel with its guacd handshake, the upload, the worker's jobs and a search,
    each a span with the session id where there is one, as the real exporter encoded them."""
    session_id = LIFE.get("session_id")
    if session_id is None:
        pytest.skip("needs the session of test_a_session_life_arrives_as_rfc5424_cef_and_json_in_order")
    with siem_gateway.api("auditor") as auditor:
        wait_for(lambda: auditor.get("/api/search", params={"q": "siem"}).json()["count"] > 0, 120, 0.5,
                 "the session's text in the index")
    # The search that found the session: the exporter batches, so an earlier search's span (0 results,
    # before the index job) may arrive last.
    wait_for(lambda: otlp.named("job.index", **{"session.id": session_id}) and any(
        s.attributes.get("search.results", 0) >= 1 for s in otlp.named("search")), 60, 0.2,
             "the worker's and the search's spans")
    login = otlp.named("POST /api/auth/login")
    assert login and login[0].resource["service.name"] == "gr-test" and login[0].attributes["request.id"]
    assert login[0].attributes["http.response.status_code"] == 200
    assert otlp.named("POST /api/connections/{connection_id}/tunnel-token")
    tunnel = otlp.named("WS /api/tunnel")
    opened = otlp.named("tunnel.open", **{"session.id": session_id})
    assert opened and opened[0].attributes["protocol"] == "vnc"
    handshake = [s for s in otlp.named("guacd.handshake") if s.parent_span_id == opened[0].span_id]
    assert handshake and handshake[0].trace_id == opened[0].trace_id  # the handshake inside the opening
    assert any(t.span_id == opened[0].parent_span_id for t in tunnel)  # ... inside the tunnel's request
    uploads = otlp.named("recording.upload", **{"session.id": session_id})
    assert uploads and all(u.attributes["bytes"] > 0 for u in uploads)
    for kind in ("render", "index"):
        jobs = otlp.named(f"job.{kind}", **{"session.id": session_id})
        assert jobs and jobs[0].resource["gui_recorder.component"] == "worker", kind
    search = otlp.named("search")
    assert any(s.attributes["search.results"] >= 1 for s in search)
    assert not any("siem" in str(v) for s in search for v in s.attributes.values())  # never the words
    # The worker's log: one JSON object per line, its job lines naming the session (bound by the job's span).
    lines = (siem_gateway.settings.var_dir / "worker.log").read_text().splitlines()
    entries = [json.loads(x) for x in lines if x.startswith("{")]
    assert entries and all(e["component"] == "worker" and "level" in e for e in entries)
    assert any(e.get("session_id") == session_id and "job" in e["message"] for e in entries), entries[-5:]


def test_the_ops_page_shows_each_sinks_health(siem_gateway, browser, artifacts):
    """Last in the module: Playwright's sync API holds this thread's event loop from here on."""
    from support.pages import signed_in

    context, page = signed_in(browser, siem_gateway, "admin", "ops.html")
    try:
        page.locator("#sinks-body tr[data-sink='cef-tcp'][data-up='true']").wait_for(timeout=15_000)
        rows = page.locator("#sinks-body tr")
        assert rows.count() == 4
        cells = page.locator("#sinks-body tr[data-sink='json-tls'] td").all_inner_texts()
        assert cells[:3] == ["json-tls", "syslog-tls", "up"] and int(cells[5]) > 0, cells
        assert "Audit chain head: event" in page.locator("#audit-chain").inner_text()
        page.screenshot(path=str(artifacts / "ops-audit-sinks.png"), full_page=True)
    finally:
        context.close()
