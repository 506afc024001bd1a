"""The `notify` action reaches a real webhook (an HTTP server on loopback) and a real rsyslog.

rsyslogd runs with a private configuration in a temporary directory, listening on a loopback UDP
port, writing what it receives in RFC 5424 to a file; stopped by its PID at the end.
"""

from __future__ import annotations

import json
import subprocess
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from conftest import wait_for
from gui_recorder.guardrails.notify import notify, syslog_line
from gui_recorder.stack.process import free_port

ALERT = {"id": 7, "rule": "no destructive commands", "severity": "high", "action": "notify", "source": "typed",
         "text": "shutdown /s", "user": "vendor", "session_id": "s-1", "connection_id": "demo-rdp"}


@pytest.fixture(scope="module")
def rsyslog(tmp_path_factory):
    work = tmp_path_factory.mktemp("rsyslog")
    port = free_port()
    conf = work / "rsyslog.conf"
    out = work / "received.log"
    conf.write_text(f'global(workDirectory="{work}")\nmodule(load="imudp")\n'
                    f'input(type="imudp" address="127.0.0.1" port="{port}")\n'
                    f'*.* action(type="omfile" file="{out}" template="RSYSLOG_SyslogProtocol23Format")\n')
    proc = subprocess.Popen(["rsyslogd", "-n", "-f", str(conf), "-i", str(work / "rsyslogd.pid")],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        # Ready when a probe line it was sent is in its file (UDP: send again until one arrives).
        def probed() -> bool:
            assert proc.poll() is None, proc.stderr.read().decode()
            notify({"id": "probe", "severity": "low"}, None, f"127.0.0.1:{port}")
            return out.exists() and '"probe"' in out.read_text()

        wait_for(probed, 20, 0.2, "rsyslogd to listen")
        yield f"127.0.0.1:{port}", out
    finally:
        proc.terminate()
        proc.wait(10)
        proc.stderr.close()


@pytest.fixture
def webhook():
    received: list[dict] = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self):  # noqa: N802 - the stdlib's name
            received.append(json.loads(self.rfile.read(int(self.headers["Content-Length"]))))
            self.send_response(204)
            self.end_headers()

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}/hook", received
    server.shutdown()
    server.server_close()
    thread.join(10)


def test_a_notify_alert_reaches_the_webhook_as_json_and_rsyslog_as_rfc5424(rsyslog, webhook):
    address, out = rsyslog
    url, received = webhook
    assert notify(ALERT, url, address) == []
    assert received == [{"type": "gui-recorder.alert", "alert": ALERT}]
    line = wait_for(lambda: next((x for x in out.read_text().splitlines() if '"s-1"' in x), None), 20, 0.2,
                    "the alert in rsyslog's file")
    # PRI 84 = authpriv (10) * 8 + warning (4): a high-severity alert; the structured body is the alert.
    assert line.startswith("<84>1 ") and " gui-recorder gui-recorder - alert - " in line, line
    assert json.loads(line.split(" alert - ", 1)[1]) == ALERT


def test_a_sink_that_is_down_is_reported_and_does_not_raise():
    closed = f"http://127.0.0.1:{free_port()}/hook"
    assert notify(ALERT, closed, "127.0.0.1:not-a-port") == ["webhook", "syslog"]
    assert syslog_line({"severity": "critical"}).startswith(b"<82>1 ")
