"""Benchmark: what the gateway adds to a guacd connection, with recording on, beside guacamole-lite.

For 1, 10, 50 and 100 concurrent sessions it measures, side by side in one run:
- the round-trip latency of an input event answered at once by the server (p50, p99): directly against
  the server, through the gateway (WebSocket -> relay -> recorder -> guacd protocol), and through
  guacamole-lite (the Node.js relay commonly used with guacamole-common-js; no recording, it has none);
- the CPU time per MB relayed of the gateway process and of guacamole-lite's;
- the gateway's RSS idle (0 sessions) and at the level's peak, and per session.

The load client is spread over several processes, so that the figures measure the relays and not the
client. The server is `bench/guacd_standin.py`, a guacd STAND-IN used only as a load tool: it replays a
real guacd recording (made by `bench/codec.py` through the real stack) to every session, and answers
each `key` press with `pong`. Recording goes to the real spool and a real MinIO.

    .venv/bin/python bench/gateway.py [--seconds 8] [--levels 1,10,50,100] [--profile 50] [--unsealed]

``--profile N`` samples the gateway with py-spy (pinned, installed into .venv on first use) at N sessions
only and prints where its CPU time goes, by layer and by function (cProfile misattributes the time of
suspended coroutines, so it is not used). ``--unsealed`` adds a row relayed by a second gateway whose
spool is not sealed (bench/serve_unsealed.py, a measuring variant) and prints what sealing costs.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import concurrent.futures
import json
import os
import secrets
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import psutil  # noqa: E402
import websockets  # noqa: E402

from gui_recorder.guacd import ClientInfo, ConnectionDefinition, open_guacd  # noqa: E402
from gui_recorder.protocol import Parser, encode  # noqa: E402
from gui_recorder.stack import Stack  # noqa: E402
from gui_recorder.stack.checks import http_ok, port_free  # noqa: E402
from gui_recorder.stack.process import free_port  # noqa: E402

RECORDING = ROOT / "var" / "bench" / "codec-vnc.guac"
LITE = ROOT / "bench" / "guacamole-lite"
PROBE_INTERVAL = 0.05
# Sessions open together; the first seconds measure the opening (sign-in checks, spool files, guacd
# handshakes of every session at once), not the relay. Figures count from the end of this warm-up.
WARMUP = 3.0
CLIENT_PROCESSES = 4


def percentile(values: list[float], p: float) -> float:
    if not values:
        return float("nan")
    values = sorted(values)
    return values[min(len(values) - 1, int(round(p / 100 * (len(values) - 1))))]


class Probe:
    """Sends key presses, times the stand-in's pong, echoes syncs like a browser."""

    def __init__(self, session_no: int, measure_from: float = 0.0):
        self.measure_from = measure_from  # time.time() from which RTTs and bytes count
        self.base = session_no * 1_000_000
        self.sent: dict[str, float] = {}
        self.rtts: list[float] = []
        self.bytes = 0
        self.n = 0

    def next_press(self) -> str:
        self.n += 1
        key = str(self.base + self.n)
        self.sent[key] = time.perf_counter()
        return encode(("key", key, "1")) + encode(("key", key, "0"))

    @property
    def measuring(self) -> bool:
        return time.time() >= self.measure_from

    def received(self, instructions) -> list[str]:
        replies = []
        for ins in instructions:
            if ins[0] == "pong":
                started = self.sent.pop(ins[1], None)
                if started is not None and self.measuring:
                    self.rtts.append((time.perf_counter() - started) * 1000)
            elif ins[0] == "sync":
                replies.append(encode(("sync", ins[1])))
        return replies


async def direct_session(port: int, probe: Probe, seconds: float) -> None:
    conn = await open_guacd("127.0.0.1", port, ConnectionDefinition("vnc", {}), ClientInfo())

    async def reader():
        while batch := await conn.read():
            if probe.measuring:
                probe.bytes += sum(len(encode(i)) for i in batch)
            replies = probe.received(batch)
            if replies:
                await conn.send_raw("".join(replies).encode())

    task = asyncio.create_task(reader())
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        await conn.send_raw(probe.next_press().encode())
        await asyncio.sleep(PROBE_INTERVAL)
    task.cancel()
    await conn.close()


async def websocket_session(url: str, probe: Probe, seconds: float) -> None:
    """A browser on a Guacamole WebSocket tunnel (the gateway's, or guacamole-lite's)."""
    async with websockets.connect(url, subprotocols=["guacamole"], max_size=None) as ws:
        parser = Parser()

        async def reader():
            async for message in ws:
                if probe.measuring:
                    probe.bytes += len(message)
                replies = probe.received(parser.feed_text(message))
                if replies:
                    await ws.send("".join(replies))

        task = asyncio.create_task(reader())
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            await ws.send(probe.next_press())
            await asyncio.sleep(PROBE_INTERVAL)
        task.cancel()
        await ws.send(encode(("disconnect",)))


def client_process(kind: str, targets: list, first: int, seconds: float, measure_from: float
                   ) -> tuple[list[float], int]:
    """One load-client process: its share of the sessions, all at once. Returns (RTTs ms, bytes)."""
    probes = [Probe(first + i, measure_from) for i in range(len(targets))]
    seconds = measure_from + seconds - time.time()

    async def run():
        if kind == "direct":
            await asyncio.gather(*(direct_session(t, p, seconds) for t, p in zip(targets, probes)))
        else:
            await asyncio.gather(*(websocket_session(t, p, seconds) for t, p in zip(targets, probes)))

    asyncio.run(run())
    return [r for p in probes for r in p.rtts], sum(p.bytes for p in probes)


class Sampler:
    """The peak RSS of a process while a level runs."""

    def __init__(self, proc: psutil.Process):
        self.proc, self.peak, self._stop = proc, 0, threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self):
        while not self._stop.wait(0.25):
            self.peak = max(self.peak, self.proc.memory_info().rss)

    def __enter__(self):
        self.peak = self.proc.memory_info().rss
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join()


def run_clients(pool, kind: str, targets: list, seconds: float, measured: psutil.Process | None):
    shares = [targets[i::CLIENT_PROCESSES] for i in range(CLIENT_PROCESSES)]
    starts = [sum(len(s) for s in shares[:i]) for i in range(len(shares))]
    measure_from = time.time() + WARMUP
    cpu: list[float] = []

    def sample_cpu():
        cpu.append(sum(measured.cpu_times()[:2]))

    timers = [threading.Timer(WARMUP, sample_cpu), threading.Timer(WARMUP + seconds, sample_cpu)] if measured else []
    for timer in timers:
        timer.start()
    with Sampler(measured or psutil.Process()) as rss:
        results = list(pool.map(client_process, [kind] * len(shares), shares, starts, [seconds] * len(shares),
                                [measure_from] * len(shares)))
    for timer in timers:
        timer.join()
    cpu = cpu[1] - cpu[0] if measured else 0.0
    rtts = [r for rs, _ in results for r in rs]
    mb = sum(b for _, b in results) / 1e6
    return {"p50": percentile(rtts, 50), "p99": percentile(rtts, 99), "mb": mb,
            "cpu_ms_per_mb": cpu * 1000 / mb if mb and measured else float("nan"), "probes": len(rtts),
            "peak_rss": rss.peak}


async def run_level(n: int, seconds: float, standin_port: int, base: str, admin: str, gw: psutil.Process) -> dict:
    """Direct and through one gateway at ``n`` sessions, as one row (bench/audit_sinks.py compares gateways)."""
    tunnel = base.replace("http", "ws", 1) + "api/tunnel?width=1024&height=768&dpi=96&token="
    tokens = [api(base, "/api/connections/bench/tunnel-token", {}, admin)["token"] for _ in range(n)]
    with concurrent.futures.ProcessPoolExecutor(CLIENT_PROCESSES) as pool:
        direct = await asyncio.to_thread(run_clients, pool, "direct", [standin_port] * n, seconds, None)
        via = await asyncio.to_thread(run_clients, pool, "ws", [tunnel + t for t in tokens], seconds, gw)
    return {"sessions": n, "direct_p50": direct["p50"], "direct_p99": direct["p99"],
            "gateway_p50": via["p50"], "gateway_p99": via["p99"], "added_p50": via["p50"] - direct["p50"],
            "added_p99": via["p99"] - direct["p99"], "mb": via["mb"], "cpu_ms_per_mb": via["cpu_ms_per_mb"],
            "probes": via["probes"]}


def api(base: str, path: str, body: dict | None = None, token: str | None = None) -> dict:
    req = urllib.request.Request(base + path.lstrip("/"), method="POST" if body is not None else "GET",
                                 data=json.dumps(body).encode() if body is not None else None,
                                 headers={"Content-Type": "application/json",
                                          **({"Authorization": f"Bearer {token}"} if token else {})})
    with urllib.request.urlopen(req, timeout=30) as resp:
        return json.loads(resp.read() or b"null")


def lite_token(key: bytes) -> str:
    """guacamole-lite's connection token: AES-256-CBC JSON, as its Crypt.js reads it."""
    from cryptography.hazmat.primitives import padding
    from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

    plain = json.dumps({"connection": {"type": "vnc", "settings": {
        "hostname": "127.0.0.1", "port": "5900", "password": "unused"}}}).encode()
    iv = os.urandom(16)
    padder = padding.PKCS7(128).padder()
    enc = Cipher(algorithms.AES(key), modes.CBC(iv)).encryptor()
    value = enc.update(padder.update(plain) + padder.finalize()) + enc.finalize()
    blob = json.dumps({"iv": base64.b64encode(iv).decode(), "value": base64.b64encode(value).decode()})
    return base64.b64encode(blob.encode()).decode()


def start_lite(standin_port: int) -> tuple[subprocess.Popen, int, bytes]:
    if shutil.which("node") is None or shutil.which("npm") is None:
        raise SystemExit("guacamole-lite needs Node.js and npm (scripts/setup.sh installs them)")
    if not (LITE / "node_modules" / "guacamole-lite").is_dir():
        subprocess.run(["npm", "ci", "--no-audit", "--no-fund", "--silent"], cwd=LITE, check=True)
    port, key = free_port(), secrets.token_hex(16).encode()  # 32 ASCII bytes: the AES-256 key
    proc = subprocess.Popen(["node", str(LITE / "server.js"), str(port), str(standin_port), key.decode()],
                            stdout=subprocess.DEVNULL)
    deadline = time.monotonic() + 30
    while port_free("127.0.0.1", port):
        if time.monotonic() > deadline or proc.poll() is not None:
            raise SystemExit("guacamole-lite did not start")
        time.sleep(0.1)
    return proc, port, key


def serve_gateway(tmp: Path, minio, guacd_host: str, guacd_port: int, sealed: bool = True):
    """A real `gui-recorder serve` on ``tmp``: (process, base URL, admin token). Shared by the benchmarks.

    ``sealed=False`` runs bench/serve_unsealed.py instead: the same gateway, its spool not sealed, only
    to price sealing (the product always seals)."""
    port, admin_password = free_port(), secrets.token_urlsafe(12)
    env = {**os.environ, "GUI_RECORDER_VAR_DIR": str(tmp / ("var" if sealed else "var-unsealed")),
           "GUI_RECORDER_SECRET_KEY": secrets.token_urlsafe(32),
           "GUI_RECORDER_ADMIN_PASSWORD": admin_password, "GUI_RECORDER_PORT": str(port),
           "GUI_RECORDER_GUACD_HOST": guacd_host, "GUI_RECORDER_GUACD_PORT": str(guacd_port),
           "GUI_RECORDER_S3_ENDPOINT": minio.endpoint,
           "GUI_RECORDER_S3_ACCESS_KEY": minio.access_key, "GUI_RECORDER_S3_SECRET_KEY": minio.secret_key,
           "GUI_RECORDER_LOG_LEVEL": "WARNING",
           "GUI_RECORDER_MFA_ROLES": "[]"}  # the admin signs in by API: no second factor here
    command = [str(ROOT / ".venv" / "bin" / "gui-recorder"), "serve"] if sealed else \
        [sys.executable, str(ROOT / "bench" / "serve_unsealed.py")]
    proc = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    base = f"http://127.0.0.1:{port}/"
    deadline = time.monotonic() + 30
    while not http_ok(base + "api/health"):
        if time.monotonic() > deadline or proc.poll() is not None:
            proc.kill()
            raise SystemExit("the gateway did not start")
        time.sleep(0.1)
    admin = api(base, "/api/auth/login", {"username": "admin", "password": admin_password})["token"]
    return proc, base, admin


PY_SPY = "py-spy==0.4.1"
LAYERS = [  # py-spy's shortened paths; the innermost frame that matches names the layer
    ("recording (recorder, spool, sealing)", ("recording/", "sealing/")),
    ("protocol parsing", ("protocol/",)),
    ("WebSocket framing (websockets, uvicorn)", ("websockets/", "uvicorn/")),
    ("ASGI/Starlette", ("starlette/",)),
    ("guacd socket (asyncio streams)", ("asyncio/streams.py",)),
    ("relay logic", ("gateway/relay.py", "gateway/filter.py", "guacd/")),
    ("uploads to MinIO, database (threads)", ("urllib3/", "minio/", "sqlalchemy/", "http/client.py", "socket.py",
                                              "concurrent/futures/thread.py", "storage/", "db/")),
    ("logging", ("logging/",)),
    ("asyncio scheduling, uvloop (C)", ("asyncio/",)),
]


def start_profiler(pid: int, seconds: float, out: Path) -> subprocess.Popen:
    spy = ROOT / ".venv" / "bin" / "py-spy"
    if not spy.exists():
        subprocess.run([str(ROOT / ".venv" / "bin" / "pip"), "install", "-q", PY_SPY], check=True)
    return subprocess.Popen([str(spy), "record", "--pid", str(pid), "--duration", str(int(seconds)), "--rate", "250",
                             "--format", "raw", "--output", str(out), "--nonblocking"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def print_profile(path: Path, mb: float) -> None:
    """py-spy's collapsed stacks: CPU samples by layer (innermost matching frame) and by function."""
    from collections import Counter

    layers, functions, total = Counter(), Counter(), 0
    for line in path.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        frames, n = stack.split(";"), int(count)
        total += n
        layer = next((name for frame in reversed(frames) for name, marks in LAYERS if any(m in frame for m in marks)),
                     "other (C code, the loop's poll)")
        layers[layer] += n
        functions[frames[-1].split(" (")[0] + " " + frames[-1].rsplit("/", 1)[-1]] += n
    print(f"\nwhere the gateway's CPU went (py-spy, {total} samples at 250 Hz, {mb:.1f} MB relayed):")
    for name, n in layers.most_common():
        print(f"  {100 * n / total:5.1f} %  {n / 250 * 1000 / mb:7.1f} ms/MB  {name}")
    print("innermost functions, top 25:")
    for name, n in functions.most_common(25):
        print(f"  {100 * n / total:5.1f} %  {name}")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--seconds", type=float, default=8.0)
    ap.add_argument("--levels", default="1,10,50,100")
    ap.add_argument("--profile", type=int, default=0, help="profile the gateway at this many sessions only")
    ap.add_argument("--no-peer", action="store_true", help="leave guacamole-lite out")
    ap.add_argument("--unsealed", action="store_true",
                    help="also relay through a second gateway whose spool is not sealed, to price sealing "
                         "(bench/serve_unsealed.py; the product always seals)")
    args = ap.parse_args()
    levels = [args.profile] if args.profile else [int(n) for n in args.levels.split(",")]
    if not RECORDING.exists():
        subprocess.run([sys.executable, str(ROOT / "bench" / "codec.py")], check=True)
    with tempfile.TemporaryDirectory() as tmp, Stack(Path(tmp) / "stack", guacd=False, vnc=False, rdp=False,
                                                     ssh=False) as stack:
        minio = stack.info.minio
        standin_port = free_port()
        standin = subprocess.Popen([sys.executable, str(ROOT / "bench" / "guacd_standin.py"), str(RECORDING),
                                    "--port", str(standin_port)], stdout=subprocess.DEVNULL)
        profile = Path(tmp) / "gateway.spy"
        gateway = lite = unsealed = None
        pool = concurrent.futures.ProcessPoolExecutor(CLIENT_PROCESSES)
        try:
            gateway, base, admin = serve_gateway(Path(tmp), minio, "127.0.0.1", standin_port)
            if not args.no_peer and not args.profile:
                lite, lite_port, lite_key = start_lite(standin_port)
            if args.unsealed:
                unsealed, unsealed_base, unsealed_admin = serve_gateway(Path(tmp), minio, "127.0.0.1", standin_port,
                                                                        sealed=False)
            for url, token in [(base, admin)] + ([(unsealed_base, unsealed_admin)] if unsealed else []):
                api(url, "/api/admin/connections", {
                    "id": "bench", "name": "bench", "protocol": "vnc", "host": "127.0.0.1", "port": 5900,
                    "password": "unused", "allowed_roles": ["admin"]}, token)
            gw = psutil.Process(gateway.pid)
            unsealed_proc = psutil.Process(unsealed.pid) if unsealed else None
            lite_proc = psutil.Process(lite.pid) if lite else None
            idle_rss = gw.memory_info().rss
            print(f"recording replayed: {RECORDING} ({RECORDING.stat().st_size / 1e6:.1f} MB), "
                  f"{args.seconds:.0f} s per level, probe every {PROBE_INTERVAL * 1000:.0f} ms per session, "
                  f"load client in {CLIENT_PROCESSES} processes, {os.cpu_count()} CPUs")
            print(f"gateway RSS at 0 sessions: {idle_rss / 1e6:.1f} MB")
            print(f"{'sessions':>8} {'relay':>15} {'p50/p99 ms':>15} {'added p50/p99':>15} {'MB':>7} "
                  f"{'CPU ms/MB':>9} {'peak RSS MB':>11} {'RSS/session':>11} {'probes':>7}")
            for n in levels:
                direct = run_clients(pool, "direct", [standin_port] * n, args.seconds, None)
                rows = [("direct", direct)]
                tunnel = base.replace("http", "ws", 1) + "api/tunnel?width=1024&height=768&dpi=96&token="
                tokens = [api(base, "/api/connections/bench/tunnel-token", {}, admin)["token"] for _ in range(n)]
                spy = start_profiler(gateway.pid, WARMUP + args.seconds, profile) if args.profile else None
                rows.append(("gateway+record", run_clients(pool, "ws", [tunnel + t for t in tokens], args.seconds, gw)))
                if spy:
                    spy.wait(60)
                    profiled_mb = rows[-1][1]["mb"]
                if unsealed:
                    tunnel = unsealed_base.replace("http", "ws", 1) + "api/tunnel?width=1024&height=768&dpi=96&token="
                    tokens = [api(unsealed_base, "/api/connections/bench/tunnel-token", {}, unsealed_admin)["token"]
                              for _ in range(n)]
                    spy = start_profiler(unsealed.pid, WARMUP + args.seconds, profile.with_suffix(".unsealed")) \
                        if args.profile else None
                    rows.append(("unsealed record", run_clients(pool, "ws", [tunnel + t for t in tokens], args.seconds,
                                                                unsealed_proc)))
                    if spy:
                        spy.wait(60)
                        unsealed_mb = rows[-1][1]["mb"]
                if lite:
                    url = f"ws://127.0.0.1:{lite_port}/?width=1024&height=768&dpi=96&token="
                    targets = [url + urllib.parse.quote(lite_token(lite_key), safe="") for _ in range(n)]
                    rows.append(("guacamole-lite", run_clients(pool, "ws", targets, args.seconds, lite_proc)))
                for name, r in rows:
                    added = "" if name == "direct" else \
                        f"{r['p50'] - direct['p50']:>6.2f}/{r['p99'] - direct['p99']:<8.2f}"
                    rss = "" if name != "gateway+record" else \
                        f"{r['peak_rss'] / 1e6:>11.1f} {(r['peak_rss'] - idle_rss) / 1e6 / n:>11.2f}"
                    if name in ("guacamole-lite", "unsealed record"):
                        rss = f"{r['peak_rss'] / 1e6:>11.1f} {'':>11}"
                    print(f"{n:>8} {name:>15} {r['p50']:>7.2f}/{r['p99']:<7.2f} {added:>15} {r['mb']:>7.1f} "
                          f"{r['cpu_ms_per_mb']:>9.1f} {rss:>23} {r['probes']:>7}", flush=True)
                if unsealed:
                    on, off = dict(rows)["gateway+record"], dict(rows)["unsealed record"]
                    extra = on['cpu_ms_per_mb'] / off['cpu_ms_per_mb'] * 100 - 100
                    print(f"{n:>8} {'sealing costs':>15} {extra:+.1f} % "
                          f"CPU per MB, p50 {on['p50'] - off['p50']:+.2f} ms, p99 {on['p99'] - off['p99']:+.2f} ms",
                          flush=True)
                # The next level starts once the gateway has closed every connection of this one to guacd.
                deadline = time.monotonic() + 60
                while any(c.raddr and c.raddr.port == standin_port
                          for p in (gw, unsealed_proc) if p for c in p.net_connections()) and \
                        time.monotonic() < deadline:
                    time.sleep(0.2)
            print(f"gateway RSS after the levels, sessions closed: {gw.memory_info().rss / 1e6:.1f} MB")
        finally:
            pool.shutdown()
            for proc in (gateway, unsealed):
                if proc:
                    proc.terminate()
                    proc.wait(30)
            standin.terminate()
            standin.wait(10)
            if lite:
                lite.terminate()
                lite.wait(10)
        if args.profile:  # before the temporary directory goes
            print_profile(profile, profiled_mb)
            if unsealed:
                print("\nthe same for the gateway whose spool is not sealed:")
                print_profile(profile.with_suffix(".unsealed"), unsealed_mb)


if __name__ == "__main__":
    main()
