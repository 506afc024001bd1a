"""Benchmark: audit streaming to a real rsyslog (issue 18).

1. Outage: audit events recorded at --rate per second (100) through the real chain and stream (a
   SQLite database, sinks CEF over TCP and JSON over TLS), while rsyslog is SIGKILLed for --outage
   seconds (600: the issue's target) and started again. Prints events recorded, received (unique),
   lost, resent duplicates, dropped, the spool's peak and how long the backlog took to drain.
2. Relay latency with sinks off vs on, side by side: the same relay load as bench/gateway.py (its
   guacd stand-in, its probes), against one gateway without sinks and one with both sinks, each
   under the same audit load (sign-ins at --audit-rate per second, each one audit event).

    .venv/bin/python bench/audit_sinks.py [--outage 600] [--rate 100] [--seconds 8] [--levels 1,10]
    .venv/bin/python bench/audit_sinks.py --skip-outage      # only the latency table
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import secrets
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))  # the rsyslog runner the tests use (tests/support/rsyslog.py)
sys.path.insert(0, str(ROOT / "bench"))

import psutil  # noqa: E402

import gateway as relay_bench  # noqa: E402 - bench/gateway.py: its probes, stand-in and table
from gui_recorder.stack import Stack  # noqa: E402
from gui_recorder.stack.checks import http_ok  # noqa: E402
from gui_recorder.stack.process import free_port  # noqa: E402
from support.rsyslog import Rsyslog  # noqa: E402


def sinks_for(rsyslog: Rsyslog) -> list[dict]:
    common = {"host": "127.0.0.1", "retry_max_seconds": 2.0}
    return [{"name": "cef-tcp", "kind": "syslog", "transport": "tcp", "port": rsyslog.tcp, "format": "cef", **common},
            {"name": "json-tls", "kind": "syslog", "transport": "tls", "port": rsyslog.tls, "format": "json",
             "ca_file": rsyslog.ca_file, **common}]


def received(rsyslog: Rsyslog) -> dict[str, list[int]]:
    out: dict[str, list[int]] = {"tcp": [], "tls": []}
    for line in rsyslog.lines():
        if line.input in out:
            seq = line.sd.split('seq="', 1)[1].split('"', 1)[0]
            out[line.input].append(int(seq))
    return out


def outage(tmp: Path, rate: float, seconds_down: float) -> None:
    from gui_recorder.db import Database
    from gui_recorder.gateway.audit import record_event
    from gui_recorder.settings import Settings

    rsyslog = Rsyslog(tmp / "rsyslog")
    rsyslog.start()
    settings = Settings(var_dir=tmp / "outage", secret_key=secrets.token_urlsafe(16), s3_secret_key="unused",
                        audit_sinks=sinks_for(rsyslog))
    db = Database(settings)
    db.create_all()
    stream = db.audit_stream
    peak = {"bytes": 0, "events": 0, "restarted": None, "drained": None}
    stop = threading.Event()

    def watch() -> None:
        while not stop.wait(0.1):
            health = stream.health()
            for h in health:
                peak["bytes"] = max(peak["bytes"], h.spooled_bytes)
                peak["events"] = max(peak["events"], h.spooled)
            if peak["restarted"] and peak["drained"] is None and all(h.up and not h.spooled for h in health):
                peak["drained"] = time.monotonic() - peak["restarted"]

    def restart() -> None:
        rsyslog.start()
        peak["restarted"] = time.monotonic()

    threading.Thread(target=watch, daemon=True).start()
    phases = [("before", 10.0, None), ("outage", seconds_down, rsyslog.kill), ("after", 10.0, restart)]
    n = 0
    start = time.monotonic()
    late = 0.0
    try:
        for name, length, action in phases:
            if action:
                action()
            print(f"  {name}: {length:.0f} s at {rate:.0f} events/s", flush=True)
            phase_start = time.monotonic()
            slowest = 0.0
            while (now := time.monotonic()) < phase_start + length:
                due = start + n / rate
                if due > now:
                    time.sleep(due - now)
                else:
                    late = max(late, now - due)
                n += 1
                t0 = time.perf_counter()
                record_event(db, "bench", "session.view", f"s{n}", "127.0.0.1", {"n": n})
                slowest = max(slowest, time.perf_counter() - t0)
            print(f"    slowest record_event in this phase: {slowest * 1000:.0f} ms", flush=True)
        drained = stream.wait_idle(max(120.0, seconds_down))
        time.sleep(1.0)  # rsyslog's own file write
        health = {h.name: h for h in stream.health()}
        got = received(rsyslog)
    finally:
        stop.set()
        db.dispose()
        rsyslog.stop()
    print(f"events recorded: {n} in {time.monotonic() - start:.0f} s (writer at most {late * 1000:.0f} ms late); "
          f"rsyslog down {seconds_down:.0f} s; the spool emptied "
          + (f"{peak['drained']:.1f} s after rsyslog was back" if drained and peak["drained"] is not None
             else "NOT (still spooled at the end)"))
    print(f"peak spool: {peak['events']} events, {peak['bytes'] / 1e6:.1f} MB")
    print(f"{'sink':>9} {'received':>9} {'unique':>7} {'lost':>5} {'resent dup':>10} {'dropped':>7} "
          f"{'in order':>8}")
    for sink, key in (("cef-tcp", "tcp"), ("json-tls", "tls")):
        seqs = got[key]
        unique = list(dict.fromkeys(seqs))
        lost = n - len(set(seqs))
        print(f"{sink:>9} {len(seqs):>9} {len(unique):>7} {lost:>5} {len(seqs) - len(unique):>10} "
              f"{health[sink].dropped:>7} {str(unique == sorted(unique)):>8}", flush=True)


def start_gateway(tmp: Path, name: str, standin_port: int, minio, sinks: list[dict]) -> tuple:
    gw_port = free_port()
    password = secrets.token_urlsafe(12)
    env = {**os.environ, "GUI_RECORDER_VAR_DIR": str(tmp / name), "GUI_RECORDER_SECRET_KEY": secrets.token_urlsafe(32),
           "GUI_RECORDER_ADMIN_PASSWORD": password, "GUI_RECORDER_PORT": str(gw_port),
           "GUI_RECORDER_GUACD_PORT": str(standin_port), "GUI_RECORDER_S3_ENDPOINT": minio.endpoint,
           "GUI_RECORDER_S3_ACCESS_KEY": minio.access_key, "GUI_RECORDER_S3_SECRET_KEY": minio.secret_key,
           "GUI_RECORDER_LOG_LEVEL": "WARNING", "GUI_RECORDER_AUDIT_SINKS": json.dumps(sinks),
           # The audit load is sign-ins: cheap hashes, so it measures the stream, not argon2.
           "GUI_RECORDER_PASSWORD_HASH_TIME_COST": "1", "GUI_RECORDER_PASSWORD_HASH_MEMORY_KIB": "1024",
           "GUI_RECORDER_TIERS": json.dumps([{"name": "hot", "bucket": f"bench-{name}-hot"}])}
    proc = subprocess.Popen([str(ROOT / ".venv" / "bin" / "gui-recorder"), "serve"], env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    base = f"http://127.0.0.1:{gw_port}/"
    deadline = time.monotonic() + 30
    while not http_ok(base + "api/health"):
        if time.monotonic() > deadline or proc.poll() is not None:
            proc.terminate()
            raise SystemExit(f"the {name} gateway did not start")
        time.sleep(0.1)
    admin = relay_bench.api(base, "/api/auth/login", {"username": "admin", "password": password})["token"]
    relay_bench.api(base, "/api/admin/connections", {
        "id": "bench", "name": "bench", "protocol": "vnc", "host": "127.0.0.1", "port": 5900,
        "password": "unused", "allowed_roles": ["admin"]}, admin)
    return proc, base, admin, password


def audit_load(base: str, password: str, rate: float, stop: threading.Event) -> list[int]:
    """Sign-ins at ``rate`` per second (each one audit event) until ``stop``."""
    count = [0]

    def run() -> None:
        start = time.monotonic()
        while not stop.is_set():
            due = start + count[0] / rate
            if due > time.monotonic():
                stop.wait(due - time.monotonic())
            relay_bench.api(base, "/api/auth/login", {"username": "admin", "password": password})
            count[0] += 1

    threading.Thread(target=run, daemon=True).start()
    return count


def latency(tmp: Path, seconds: float, levels: list[int], audit_rate: float) -> None:
    if not relay_bench.RECORDING.exists():
        subprocess.run([sys.executable, str(ROOT / "bench" / "codec.py")], check=True)
    rsyslog = Rsyslog(tmp / "rsyslog-latency")
    rsyslog.start()
    with Stack(tmp / "stack", guacd=False, vnc=False, rdp=False) as stack:
        standin_port = free_port()
        standin = subprocess.Popen([sys.executable, str(ROOT / "bench" / "guacd_standin.py"),
                                    str(relay_bench.RECORDING), "--port", str(standin_port)], stdout=subprocess.DEVNULL)
        gateways = {}
        try:
            gateways["off"] = start_gateway(tmp, "off", standin_port, stack.info.minio, [])
            gateways["on"] = start_gateway(tmp, "on", standin_port, stack.info.minio, sinks_for(rsyslog))
            print(f"relay: {seconds:.0f} s per level and mode, probe every {relay_bench.PROBE_INTERVAL * 1000:.0f} ms "
                  f"per session; audit load {audit_rate:.0f} sign-ins/s on the gateway under test")
            print(f"{'sessions':>8} {'sinks':>5} {'direct p50/p99 ms':>18} {'gateway p50/p99 ms':>19} "
                  f"{'added p50/p99 ms':>17} {'CPU ms/MB':>9} {'events':>7} {'probes':>7}")
            for n in levels:
                for mode in ("off", "on"):
                    proc, base, admin, password = gateways[mode]
                    stop = threading.Event()
                    count = audit_load(base, password, audit_rate, stop)
                    try:
                        r = asyncio.run(relay_bench.run_level(n, seconds, standin_port, base, admin,
                                                              psutil.Process(proc.pid)))
                    finally:
                        stop.set()
                    print(f"{n:>8} {mode:>5} {r['direct_p50']:>8.2f}/{r['direct_p99']:<9.2f} "
                          f"{r['gateway_p50']:>8.2f}/{r['gateway_p99']:<10.2f} "
                          f"{r['added_p50']:>7.2f}/{r['added_p99']:<9.2f} {r['cpu_ms_per_mb']:>9.1f} "
                          f"{count[0]:>7} {r['probes']:>7}", flush=True)
            on = received(rsyslog)
            print(f"events at rsyslog from the 'on' gateway: {len(on['tcp'])} CEF/TCP, {len(on['tls'])} JSON/TLS")
        finally:
            for proc, *_ in gateways.values():
                proc.terminate()
                proc.wait(10)
            standin.terminate()
            standin.wait(10)
            rsyslog.stop()


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--outage", type=float, default=600.0, help="seconds rsyslog is down")
    ap.add_argument("--rate", type=float, default=100.0, help="audit events per second during the outage run")
    ap.add_argument("--seconds", type=float, default=8.0, help="relay seconds per level and mode")
    ap.add_argument("--levels", default="1,10")
    ap.add_argument("--audit-rate", type=float, default=20.0, help="sign-ins per second during the relay runs")
    ap.add_argument("--skip-outage", action="store_true")
    ap.add_argument("--skip-latency", action="store_true")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        if not args.skip_outage:
            print(f"outage: rsyslog SIGKILLed for {args.outage:.0f} s while {args.rate:.0f} events/s are recorded")
            outage(Path(tmp), args.rate, args.outage)
        if not args.skip_latency:
            latency(Path(tmp), args.seconds, [int(x) for x in args.levels.split(",")], args.audit_rate)


if __name__ == "__main__":
    main()
