"""Benchmark: two gateways behind HAProxy, one killed under load (issue 17, item 9).

Real HAProxy (Debian, health checks on /api/health) balances N concurrent sessions
over two `gui-recorder serve` processes sharing one database (PostgreSQL 15 by
default, started here; `--db sqlite` for the embedded file) and one MinIO with
four drives (erasure-coded). The guacd is `bench/guacd_standin.py`, a guacd
STAND-IN used only as a load tool: it replays a real guacd recording to every
session and answers each key press with `pong`, so a load client times the round
trip through HAProxy, a gateway and its recorder. The load runs in several
client processes, so the figures measure the gateways, not the client.

Halfway through, one gateway is killed with SIGKILL. Printed side by side:
p50/p99 round trip of the survivor's sessions before and after the kill, the
killed gateway's sessions (cut), every session's recording checked in MinIO
against its manifest's SHA-256 once the killed gateway has restarted and
recovered its spool, and each gateway's CPU and RSS per session.

    .venv/bin/python bench/cluster.py [--sessions 100] [--seconds 60] [--clients 4] [--db postgres]
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import json
import multiprocessing
import os
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import psutil  # noqa: E402
import websockets  # noqa: E402

from bench.gateway import RECORDING, Probe, api, percentile  # noqa: E402
from gui_recorder.protocol import Parser, encode  # noqa: E402
from gui_recorder.stack import Stack  # noqa: E402
from gui_recorder.stack.checks import http_ok  # noqa: E402
from gui_recorder.stack.process import free_port  # noqa: E402

PROBE_INTERVAL = 0.1
PG_BIN = Path("/usr/lib/postgresql/15/bin")


def haproxy_config(port: int, gateways: dict[str, int]) -> str:
    servers = "\n".join(f"    server {name} 127.0.0.1:{p} check inter 1s fall 2 rise 2" for name, p in gateways.items())
    return f"""global
    maxconn 4096
    log stderr format short local0
defaults
    mode http
    log global
    option httplog
    timeout connect 5s
    timeout client 60s
    timeout server 60s
    timeout tunnel 1h
frontend gateways
    bind 127.0.0.1:{port}
    default_backend gateways
backend gateways
    balance roundrobin
    option httpchk GET /api/health
    http-check expect status 200
    http-response set-header X-Served-By %s
{servers}
"""


async def one_session(base: str, token: str, number: int, end_at: float, kill_at: float) -> dict:
    probe = Probe(number)
    url = base.replace("http", "ws", 1) + f"api/tunnel?token={token}&width=1024&height=768&dpi=96"
    before, after, served_by, session_id = [], [], "?", None
    try:
        async with websockets.connect(url, subprotocols=["guacamole"], max_size=None, open_timeout=30) as ws:
            served_by = ws.response.headers.get("X-Served-By", "?")
            parser = Parser()
            session_id = parser.feed_text(await ws.recv())[0][1]

            async def reader():
                async for message in ws:
                    probe.bytes += len(message)
                    replies = probe.received(parser.feed_text(message))
                    if replies:
                        await ws.send("".join(replies))

            task = asyncio.create_task(reader())
            while time.time() < end_at and not task.done():
                (before if time.time() < kill_at else after).append(len(probe.rtts))
                await ws.send(probe.next_press())
                await asyncio.sleep(PROBE_INTERVAL)
            task.cancel()
            await ws.send(encode(("disconnect",)))
    except (websockets.ConnectionClosed, OSError):
        pass  # the killed gateway's sessions end here
    # Probes answered before and after the kill: the index of the first probe sent after it.
    cut = before[-1] if before else 0
    return {"served_by": served_by, "session_id": session_id, "before": probe.rtts[:cut],
            "after": probe.rtts[cut:], "bytes": probe.bytes}


def client_process(args: tuple) -> list[dict]:
    base, tokens, first, end_at, kill_at = args

    async def run():
        return await asyncio.gather(*(one_session(base, t, first + i, end_at, kill_at) for i, t in enumerate(tokens)))

    return asyncio.run(run())


def start_postgres() -> tuple[str, callable]:
    # The server refuses to run as root, and runs as postgres: a directory of its own, not under ours.
    base = Path(tempfile.mkdtemp(prefix="gr-bench-pg-"))
    data = base / "pg"
    shutil.chown(base, "postgres")

    def as_postgres(*argv):
        subprocess.run(["runuser", "-u", "postgres", "--", *argv], check=True, capture_output=True)

    as_postgres(str(PG_BIN / "initdb"), "-D", str(data), "-A", "trust", "-U", "postgres", "--no-sync")
    port = free_port()
    as_postgres(str(PG_BIN / "pg_ctl"), "-D", str(data), "-l", str(base / "pg.log"), "-w", "-o",
                f"-p {port} -k {base} -c listen_addresses=127.0.0.1 -c max_connections=300", "start")
    def stop():
        as_postgres(str(PG_BIN / "pg_ctl"), "-D", str(data), "-m", "fast", "-w", "stop")
        shutil.rmtree(base, ignore_errors=True)

    return f"postgresql+psycopg://postgres@127.0.0.1:{port}/postgres", stop


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--sessions", type=int, default=100)
    ap.add_argument("--seconds", type=float, default=60.0)
    ap.add_argument("--clients", type=int, default=4, help="load client processes")
    ap.add_argument("--db", choices=("postgres", "sqlite"), default="postgres")
    ap.add_argument("--haproxy-log", type=Path, help="keep HAProxy's log here")
    args = ap.parse_args()
    if not RECORDING.exists():
        subprocess.run([sys.executable, str(ROOT / "bench" / "codec.py")], check=True)
    procs: dict[str, subprocess.Popen] = {}
    with tempfile.TemporaryDirectory() as tmp, \
            Stack(Path(tmp) / "stack", guacd=False, vnc=False, rdp=False, minio_drives=4) as stack:
        tmp = Path(tmp)
        minio = stack.info.minio
        db_url, stop_db = (start_postgres() if args.db == "postgres"
                           else (f"sqlite:///{tmp / 'gr.db'}", lambda: None))
        standin_port, lb_port = free_port(), free_port()
        procs["standin"] = subprocess.Popen([sys.executable, str(ROOT / "bench" / "guacd_standin.py"), str(RECORDING),
                                             "--port", str(standin_port)], stdout=subprocess.DEVNULL)
        admin_password = secrets.token_urlsafe(12)
        common = {**os.environ, "GUI_RECORDER_SECRET_KEY": secrets.token_urlsafe(32),
                  "GUI_RECORDER_ADMIN_PASSWORD": admin_password, "GUI_RECORDER_DATABASE_URL": db_url,
                  "GUI_RECORDER_GUACD_PORT": str(standin_port), "GUI_RECORDER_S3_ENDPOINT": minio.endpoint,
                  "GUI_RECORDER_S3_ACCESS_KEY": minio.access_key, "GUI_RECORDER_S3_SECRET_KEY": minio.secret_key,
                  "GUI_RECORDER_LOG_LEVEL": "WARNING", "GUI_RECORDER_TRUSTED_PROXIES": "127.0.0.1"}
        ports = {"gw1": free_port(), "gw2": free_port()}
        envs = {name: {**common, "GUI_RECORDER_VAR_DIR": str(tmp / name), "GUI_RECORDER_PORT": str(port),
                       "GUI_RECORDER_GATEWAY_ID": name} for name, port in ports.items()}

        def start_gateway(name: str) -> None:
            procs[name] = subprocess.Popen([str(ROOT / ".venv" / "bin" / "gui-recorder"), "serve"], env=envs[name],
                                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            deadline = time.monotonic() + 60
            while not http_ok(f"http://127.0.0.1:{ports[name]}/api/health"):
                if time.monotonic() > deadline or procs[name].poll() is not None:
                    raise SystemExit(f"gateway {name} did not start")
                time.sleep(0.1)

        try:
            start_gateway("gw1")  # first alone: it creates the schema and seeds the admin
            start_gateway("gw2")
            (tmp / "haproxy.cfg").write_text(haproxy_config(lb_port, ports))
            with open(args.haproxy_log or tmp / "haproxy.log", "wb") as log:
                procs["haproxy"] = subprocess.Popen(["haproxy", "-f", str(tmp / "haproxy.cfg"), "-db"],
                                                    stdout=log, stderr=subprocess.STDOUT)
            base = f"http://127.0.0.1:{lb_port}/"
            deadline = time.monotonic() + 30
            while not http_ok(base + "api/health"):
                if time.monotonic() > deadline:
                    raise SystemExit("HAProxy did not start")
                time.sleep(0.1)
            admin = api(base, "/api/auth/login", {"username": "admin", "password": admin_password})["token"]
            api(base, "/api/admin/connections", {
                "id": "bench", "name": "bench", "protocol": "vnc", "host": "127.0.0.1", "port": 5900,
                "password": "unused", "allowed_roles": ["admin"]}, admin)
            gateways = {name: psutil.Process(procs[name].pid) for name in ports}
            rss0 = {name: p.memory_info().rss for name, p in gateways.items()}
            cpu0 = {name: sum(p.cpu_times()[:2]) for name, p in gateways.items()}
            tokens = [api(base, "/api/connections/bench/tunnel-token", {}, admin)["token"]
                      for _ in range(args.sessions)]
            chunks = [tokens[i::args.clients] for i in range(args.clients)]
            firsts = [sum(len(c) for c in chunks[:i]) for i in range(args.clients)]
            killer_done = {}

            def kill_gw2_halfway():
                time.sleep(max(0.0, kill_at - time.time()))  # a scheduled fault, not a synchronisation
                killer_done["rss"] = {n: p.memory_info().rss for n, p in gateways.items()}
                killer_done["cpu"] = {n: sum(p.cpu_times()[:2]) for n, p in gateways.items()}
                procs["gw2"].send_signal(signal.SIGKILL)

            with multiprocessing.get_context("spawn").Pool(args.clients) as pool:
                pool.map(abs, range(args.clients))  # the client processes are up before the clock starts
                # Absolute times for every client: a few seconds to connect, then the measured run.
                start_at = time.time() + 3
                end_at, kill_at = start_at + args.seconds, start_at + args.seconds / 2
                killer = threading.Thread(target=kill_gw2_halfway)
                killer.start()
                results = [r for part in pool.map(client_process, [(base, c, f, end_at, kill_at)
                                                                   for c, f in zip(chunks, firsts)]) for r in part]
            killer.join()
            procs["gw2"].wait(10)
            start_gateway("gw2")  # recovers its spool: the cut sessions' recordings are uploaded
            check = verify_recordings(minio, [r["session_id"] for r in results if r["session_id"]], base, admin)
        finally:
            for proc in procs.values():
                if proc.poll() is None:
                    proc.terminate()
            for proc in procs.values():
                try:
                    proc.wait(15)
                except subprocess.TimeoutExpired:
                    proc.kill()
            stop_db()

    survivors = [r for r in results if r["served_by"] == "gw1"]
    cut = [r for r in results if r["served_by"] == "gw2"]
    print(f"{args.sessions} sessions through HAProxy over 2 gateways ({args.db}, MinIO on 4 drives), "
          f"{args.seconds:.0f} s, gw2 SIGKILLed at {args.seconds / 2:.0f} s, {args.clients} load processes, "
          f"probe every {PROBE_INTERVAL * 1000:.0f} ms per session")
    print(f"{'':>28} {'sessions':>8} {'p50 ms':>8} {'p99 ms':>8} {'probes':>7}")
    for label, rows, part in (("survivor gw1, before kill", survivors, "before"),
                              ("survivor gw1, after kill", survivors, "after"),
                              ("killed gw2, before kill", cut, "before"), ("killed gw2, after kill", cut, "after")):
        rtts = [x for r in rows for x in r[part]]
        p50, p99 = (percentile(rtts, 50), percentile(rtts, 99)) if rtts else (float("nan"), float("nan"))
        print(f"{label:>28} {len(rows):>8} {p50:>8.2f} {p99:>8.2f} {len(rtts):>7}")
    for name in ("gw1", "gw2"):
        n = len(survivors if name == "gw1" else cut)
        if not n or "cpu" not in killer_done:
            continue
        cpu = killer_done["cpu"][name] - cpu0[name]
        rss = killer_done["rss"][name] - rss0[name]
        print(f"{name}: {n} sessions; CPU {cpu / (n * args.seconds / 2) * 100:.2f} % of a core per session; "
              f"RSS {rss / n / 1e6:.2f} MB per session (gateway RSS {killer_done['rss'][name] / 1e6:.0f} MB)")
    print(f"recordings in MinIO matching their manifests' SHA-256: {check['ok']} of {check['sessions']} sessions "
          f"({check['segments']} segments); complete: {check['complete']}; mismatches: {check['bad'] or 'none'}")


def verify_recordings(minio, session_ids: list[str], base: str, admin: str, timeout: float = 180) -> dict:
    """Every session's manifest and segments, read back from MinIO and hashed."""
    from minio import Minio

    from gui_recorder.storage.keys import manifest_key

    client = Minio(minio.endpoint, minio.access_key, minio.secret_key, secure=False)
    deadline = time.monotonic() + timeout
    pending = set(session_ids)
    while pending and time.monotonic() < deadline:
        pending = {s for s in pending if not api(base, f"/api/sessions/{s}", None, admin).get("recording_complete")}
        time.sleep(1)
    ok, segments, bad = 0, 0, []
    for sid in session_ids:
        manifest = json.loads(client.get_object("recordings-hot", manifest_key(sid)).read())
        good = True
        for segment in manifest["segments"]:
            data = client.get_object("recordings-hot", segment["key"]).read()
            segments += 1
            if hashlib.sha256(data).hexdigest() != segment["sha256"]:
                good = False
                bad.append(segment["key"])
        ok += good
    return {"sessions": len(session_ids), "ok": ok, "segments": segments, "bad": bad,
            "complete": len(session_ids) - len(pending)}


if __name__ == "__main__":
    main()
