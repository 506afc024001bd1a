"""The `gui-recorder` command: one subcommand per job, errors as exit codes.

Every subcommand builds the one ``Settings`` object and hands it on; a
``GuiRecorderError`` ends the command with its message and exit status 2.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import secrets
import signal
import sys
from pathlib import Path

from gui_recorder.errors import ConfigError, GuiRecorderError
from gui_recorder.settings import ENV_PREFIX, Settings, settings_markdown, settings_table

log = logging.getLogger("gui_recorder")

DEMO_ROLES = ("admin", "operator", "vendor", "auditor")


def load_settings(args: argparse.Namespace) -> Settings:
    """GUI_RECORDER_* variables, or the file given with --env-file (the dev stack writes one); secrets
    also from files in --secrets-dir, each named after its variable (docs/production.md)."""
    from pydantic import ValidationError

    sources = {}
    if getattr(args, "secrets_dir", None):
        if not Path(args.secrets_dir).is_dir():
            raise ConfigError(f"no secrets directory {args.secrets_dir}")
        sources["_secrets_dir"] = args.secrets_dir
    try:
        if getattr(args, "env_file", None):
            if not Path(args.env_file).is_file():
                raise ConfigError(f"no settings file {args.env_file}")
            settings = Settings(_env_file=args.env_file, **sources)
        else:
            settings = Settings(**sources)
    except ValidationError as exc:
        problems = "; ".join(f"{ENV_PREFIX}{'_'.join(map(str, e['loc'])).upper()}: {e['msg']}" for e in exc.errors())
        raise ConfigError(f"the settings are not valid ({problems}); `gui-recorder settings` lists them") from None
    logging.getLogger().setLevel(settings.log_level)
    from gui_recorder.telemetry import logs

    # One formatter for every logger of the process: JSON lines (or text), with session and request ids.
    logs.configure(settings, {"serve": "gateway"}.get(getattr(args, "command", None), args.command or "cli"))
    return settings


def server_config(settings: Settings, app=None, **overrides):
    """uvicorn's configuration for the gateway (``serve``, ``dev`` and the tests that need the real edge).

    ``X-Forwarded-For``/``-Proto`` are believed only from ``trusted_proxies``: from
    them the client address (audit, throttling) and the scheme (``Secure`` cookies
    behind TLS) are the original ones; from anyone else the headers are ignored.
    """
    import uvicorn

    from gui_recorder.gateway.app import create_app
    from gui_recorder.gateway.edge import redact_server_logs

    trusted = [p.strip() for p in settings.trusted_proxies.split(",") if p.strip()]
    options = dict(host=settings.host, port=settings.port, log_level=settings.log_level.lower(),
                   ws_max_size=settings.ws_max_message_bytes,
                   proxy_headers=bool(trusted), forwarded_allow_ips=trusted, server_header=False,
                   # Screen updates are PNG/JPEG in base64: deflate costs CPU for little gain.
                   ws_per_message_deflate=False,
                   # uvicorn's loggers propagate to the root's one handler (telemetry.logs): its format.
                   log_config=None)
    config = uvicorn.Config(app if app is not None else create_app(settings), **{**options, **overrides})
    redact_server_logs()  # after Config: it (re)configures uvicorn's loggers
    return config


def _server(settings: Settings):
    import uvicorn

    from gui_recorder.telemetry import logs

    logs.configure(settings, "gateway")
    return uvicorn.Server(server_config(settings))


def _serve(settings: Settings) -> None:
    _server(settings).run()


def cmd_serve(args: argparse.Namespace) -> int:
    settings = load_settings(args)
    if args.port:
        settings = settings.model_copy(update={"port": args.port})
    _serve(settings)
    return 0


def build_worker(settings: Settings):
    from gui_recorder.index import SearchIndex
    from gui_recorder.storage import ensure_buckets
    from gui_recorder.storage.tiering import Tiering
    from gui_recorder.worker.lifecycle import run_lifecycle
    from gui_recorder.worker.live import LiveIndexer
    from gui_recorder.worker.runner import Periodic, Worker, build_context
    from gui_recorder.worker.tasks import TASKS

    settings.check_links()
    ctx = build_context(settings)
    ctx.db.create_all()
    # Every tier before anything reads them: live text looks into later tiers for moved sessions.
    ensure_buckets(*(tier.store for tier in ctx.tiers))
    tiering = Tiering(ctx.tiers, drop_media=ctx.settings.cold_drop_media,
                      rendered_media_days=ctx.settings.cold_rendered_media_days)

    def lifecycle_pass(ctx) -> None:
        # Expired sessions are forgotten, text included (issue 10: it used to stay searchable).
        with SearchIndex.from_settings(settings) as index:
            run_lifecycle(ctx.db, tiering, settings.retention_days, index, spool_root=settings.resolved_spool_dir)

    lifecycle = Periodic("storage lifecycle", settings.tiering_interval_seconds, lifecycle_pass)
    live_text = Periodic("live text", settings.live_text_interval_seconds, LiveIndexer())
    return Worker(ctx, TASKS, periodic=[lifecycle, live_text],
                  lease_seconds=settings.worker_lease_seconds, max_job_seconds=settings.job_time_limit_seconds)


def cmd_worker(args: argparse.Namespace) -> int:
    import threading

    settings = load_settings(args)
    # This process's tesseract runs (its job children inherit it): decided once, here, from the settings.
    os.environ["OMP_THREAD_LIMIT"] = str(settings.ocr_threads)
    worker = build_worker(settings)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    from gui_recorder.telemetry import traces

    traced = traces.configure(settings, "worker")  # off unless otel_endpoint is set
    if worker.ctx.db.audit_stream is not None:
        worker.ctx.db.audit_stream.start()  # an earlier run's spooled audit events go out at once
    log.info("worker %s waiting for jobs (%s)", worker.name, ", ".join(worker.tasks))
    try:
        worker.run_forever(stop)
    except KeyboardInterrupt:
        pass
    finally:
        worker.ctx.db.dispose()  # the audit stream's last events to their sinks (or their spool)
        if traced:
            traces.shutdown()
    return 0


def cmd_import(args: argparse.Namespace) -> int:
    from gui_recorder.db import Database
    from gui_recorder.storage import write_store
    from gui_recorder.sessions.imports import import_directory
    from gui_recorder.db import jobs

    directory = Path(args.directory)
    if not directory.is_dir():
        print(f"gui-recorder: {directory} is not a directory", file=sys.stderr)
        return 2
    settings = load_settings(args)
    db = Database(settings)
    db.create_all()
    from gui_recorder.sealing.provider import sealing_keys

    results = import_directory(db, write_store(settings), directory,
                               on_imported=lambda session_id: jobs.enqueue_all(db, session_id),
                               sealing=sealing_keys(settings))
    for r in results:
        print(f"{r.status:8} {r.path}" + (f"  session {r.session_id}" if r.session_id else "")
              + (f"  ({r.detail})" if r.detail else ""))
    imported = sum(r.status == "imported" for r in results)
    print(f"{imported} imported, {sum(r.status == 'already' for r in results)} already there, "
          f"{sum(r.status == 'skipped' for r in results)} skipped; rendering and indexing are queued")
    return 0


def cmd_verify_audit(args: argparse.Namespace) -> int:
    """Walks the audit chain: 0 when every link holds, 1 naming the first event that breaks it."""
    from gui_recorder.db import Database
    from gui_recorder.db.audit_chain import verify

    db = Database(load_settings(args))
    try:
        report = verify(db.session)
    finally:
        db.dispose()
    prefix = f" ({report.unchained} older events recorded before the chain, not checked)" if report.unchained else ""
    if report.ok:
        print(f"audit chain intact: {report.events} events, head seq {report.head_seq} {report.head_hash}{prefix}")
        return 0
    print(f"gui-recorder: audit chain broken at {report.first_break} ({report.events} events before it "
          f"hold){prefix}", file=sys.stderr)
    return 1


def cmd_render(args: argparse.Namespace) -> int:
    import time

    from gui_recorder.render import render_recording

    size = None
    if args.size:
        try:
            w, h = (int(v) for v in args.size.lower().split("x"))
            size = (w, h)
        except ValueError:
            print(f"gui-recorder: --size wants WIDTHxHEIGHT, not {args.size!r}", file=sys.stderr)
            return 2
    out = Path(args.output)
    started = time.monotonic()

    def bar(fraction: float) -> None:
        filled = int(fraction * 40)
        sys.stderr.write(f"\r[{'#' * filled}{'.' * (40 - filled)}] {fraction * 100:5.1f}%")
        sys.stderr.flush()

    stem = out.with_suffix("")
    result = render_recording(Path(args.recording), out, size=size,
                              sprite_path=stem.with_name(stem.name + "-sprite.jpg"),
                              sprite_index_path=stem.with_name(stem.name + "-sprite.json"),
                              poster_path=stem.with_name(stem.name + "-poster.jpg"),
                              progress=None if args.quiet else bar)
    elapsed = time.monotonic() - started
    if not args.quiet:
        sys.stderr.write("\n")
    print(f"{out}: {result.width}x{result.height}, {result.duration_ms / 1000:.1f} s, "
          f"{result.frames_encoded} frames, {result.bytes_written / 1e6:.2f} MB, "
          f"rendered in {elapsed:.1f} s ({result.duration_ms / 1000 / max(elapsed, 1e-9):.0f}x real time)")
    if result.unknown or result.malformed:
        print(f"skipped: unknown {result.unknown}, malformed {result.malformed}")
    if result.truncated:
        print(f"the recording ends early ({result.truncated}); everything before it was rendered")
    return 0


def cmd_search(args: argparse.Namespace) -> int:
    from datetime import datetime

    from gui_recorder.index import search_command

    def when(value: str | None):
        return datetime.fromisoformat(value) if value else None

    print(search_command(load_settings(args), args.query, user=args.user, connection=args.connection,
                         since=when(args.since), until=when(args.until), source=args.source, as_json=args.json,
                         limit=args.limit))
    return 0


def settings_env(settings: Settings) -> dict[str, str]:
    """The settings as GUI_RECORDER_* variables, for a child process (the dev worker)."""
    env = {}
    for name, value in settings.model_dump().items():
        if value is None:
            continue
        if hasattr(value, "get_secret_value"):
            value = value.get_secret_value()
        if isinstance(value, dict):
            value = json.dumps(value)  # group -> role maps: JSON, as the variables are read
        elif isinstance(value, list) and value and all(isinstance(i, dict) for i in value):
            # tiers (and sinks): the JSON the variable is read as, secrets included
            value = json.dumps([{k: v.get_secret_value() if hasattr(v, "get_secret_value") else v
                                 for k, v in item.items() if v is not None} for item in value], default=str)
        elif isinstance(value, list):  # role lists, paths and labels (the retired sealing keys): a JSON list
            value = json.dumps([str(item) for item in value])
        env[f"GUI_RECORDER_{name.upper()}"] = str(value)
    return env


def _dev_secrets(path: Path) -> dict:
    """Secrets of the dev stack, generated once and kept, so its data stays readable."""
    if path.exists():
        path.chmod(0o600)  # a file an older version left 0644
        return json.loads(path.read_text())
    data = {
        "secret_key": secrets.token_urlsafe(32),
        "minio_secret_key": secrets.token_urlsafe(18),
        "accounts": {role: f"{role}-{secrets.token_urlsafe(12)}" for role in DEMO_ROLES},
    }
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as out:
        out.write(json.dumps(data, indent=2))
    return data


class _DevShutdown:
    """SIGTERM and SIGINT for `gui-recorder dev`.

    While the stack starts, a signal raises KeyboardInterrupt, so that a slow start is cut
    short. Once the server exists, a signal only asks it to stop: an exception raised from a
    signal handler lands wherever the interpreter happens to be, and in a weakref callback
    or a finaliser it is printed and dropped (a SIGTERM during the server's start was lost
    that way, and the stack ran on). The flag is the backstop: a start whose interrupt was
    dropped does not go on to serve. While the stack stops, signals change nothing, so a
    second one cannot cut the stop short and leave components behind.
    """

    def __init__(self) -> None:
        self.requested = False
        self.server = None
        self.stopping = False
        for sig in (signal.SIGTERM, signal.SIGINT):
            signal.signal(sig, self)

    def __call__(self, signum, _frame) -> None:
        self.requested = True
        if self.stopping:
            return
        if self.server is not None:
            self.server.should_exit = True
            return
        raise KeyboardInterrupt


def cmd_dev(args: argparse.Namespace) -> int:
    from gui_recorder.stack import Stack
    from gui_recorder.stack.process import free_port
    from gui_recorder.stack.checks import port_free

    # Everything the dev stack writes under var/ (secrets, database, spool, MinIO's
    # data, logs) is for this account only: files 0600, directories 0700 (issue 10).
    os.umask(0o077)
    var_dir = Path(args.var_dir).resolve()
    var_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    var_dir.chmod(0o700)  # one an older version made 0755: nothing below is reachable by others now
    kept = _dev_secrets(var_dir / "secrets.json")
    shutdown = _DevShutdown()
    # The demo desktops run as the unprivileged demo account; guacd, MinIO and the
    # worker are restarted when they die; none of them outlives this process.
    stack = Stack(var_dir / "stack", minio_secret_key=kept["minio_secret_key"])
    try:
        print("starting MinIO, guacd, the VNC and the RDP demo targets...", flush=True)
        info = stack.start()
        port = args.port if port_free("127.0.0.1", args.port) else free_port()
        settings = Settings(
            var_dir=var_dir,
            host="127.0.0.1",
            port=port,
            secret_key=kept["secret_key"],
            admin_username="admin",
            admin_password=kept["accounts"]["admin"],
            guacd_host=info.guacd.host,
            guacd_port=info.guacd.port,
            s3_endpoint=info.minio.endpoint,
            s3_access_key=info.minio.access_key,
            s3_secret_key=info.minio.secret_key,
            log_format="text",  # `make run` is for people; deployments keep json
        )
        connections = _seed_demo(settings, info, kept["accounts"])
        # The worker renders and indexes in its own process: CPU-heavy work stays off the relay's loop.
        stack.spawn("worker", [sys.executable, "-m", "gui_recorder.cli", "worker"],
                    env=settings_env(settings), restart=True)
        url = f"http://{settings.host}:{settings.port}/"
        described = {
            "gateway_url": url,
            "components": info.to_dict(),
            "accounts": [{"username": role, "password": pw, "role": role}
                         for role, pw in kept["accounts"].items()],
            "connections": connections,
        }
        env_file = var_dir / "gui-recorder.env"
        env_file.touch(mode=0o600)
        env_file.chmod(0o600)
        env_file.write_text("".join(f"{k}={v}\n" for k, v in settings_env(settings).items()))
        stack_json = var_dir / "stack.json"
        stack_json.touch(mode=0o600)
        stack_json.chmod(0o600)
        stack_json.write_text(json.dumps(described, indent=2))
        print(f"\ngui-recorder is running at {url}\n")
        for account in described["accounts"]:
            print(f"  {account['role']:9} {account['username']:9} password {account['password']}")
        if settings.mfa_roles:
            print(f"  ({', '.join(settings.mfa_roles)}: an authenticator app is enrolled at the first sign-in, "
                  "from the QR code the page shows; GUI_RECORDER_MFA_ROLES=[] turns it off)")
        print(f"\ndemo connections: {', '.join(c['id'] for c in connections)}")
        print(f"details: {stack_json}   (Ctrl-C stops everything)")
        print(f"other commands on this stack: gui-recorder --env-file {env_file} search|import|render ...\n",
              flush=True)
        server = _server(settings)
        shutdown.server = server
        if not shutdown.requested:
            server.run()
    except KeyboardInterrupt:
        pass
    finally:
        shutdown.stopping = True
        stack.stop()
        print("stopped every component", flush=True)
    return 0


def _seed_demo(settings: Settings, info, accounts: dict[str, str]) -> list[dict]:
    """Demo accounts (one per role) and the two demo connections, idempotently."""
    from gui_recorder.stack.demo import seed_demo

    return seed_demo(settings, info, accounts)


def cmd_settings(args: argparse.Namespace) -> int:
    if args.markdown:
        print(settings_markdown(), end="")
        return 0
    for row in settings_table():
        bounds = f"  [{row['bounds']}]" if row["bounds"] else ""
        print(f"{row['variable']} ({row['type']}, default {row['default']}){bounds}\n    {row['description']}")
    return 0


def _read_password(confirm: bool = True) -> str:
    """From the terminal (asked twice), or the first line of stdin when it is not one: never argv,
    which other local users can read in the process list and which shells keep in history."""
    import getpass

    if not sys.stdin.isatty():
        line = sys.stdin.readline().rstrip("\r\n")
        if not line:
            raise ConfigError("no password on stdin (give it as the first line)")
        return line
    first = getpass.getpass("password: ")
    if confirm and getpass.getpass("again: ") != first:
        raise ConfigError("the two passwords differ")
    return first


def _cli_event(db, action: str, target: str, detail: dict) -> None:
    import getpass

    from gui_recorder.gateway import audit

    audit.record_event(db, None, action, target, None, {**detail, "by": "cli", "os_user": getpass.getuser()})


def cmd_user(args: argparse.Namespace) -> int:
    """`user add|list|passwd`: account management on the configured database (bootstraps production)."""
    from gui_recorder.db import Database
    from gui_recorder.gateway import users

    settings = load_settings(args)
    db = Database(settings)
    try:
        db.create_all()
        if args.user_command == "list":
            print(f"{'username':24} {'role':9} {'source':6} {'state':8} {'last sign-in':20} groups")
            for u in users.list_users(db):
                last = u.last_sign_in_at.strftime("%Y-%m-%d %H:%M:%S") if u.last_sign_in_at else "never"
                print(f"{u.username:24} {u.role:9} {u.source:6} {'disabled' if u.disabled else 'enabled':8} "
                      f"{last:20} {', '.join(u.groups)}")
        elif args.user_command == "add":
            password = _read_password() if args.source == "local" else None
            out = users.create_user(db, args.name, args.role, source=args.source, password=password,
                                    groups=args.group or [], min_length=settings.password_min_length)
            _cli_event(db, "user.create", out.username, {"role": out.role, "source": out.source,
                                                         "groups": out.groups})
            print(f"created {out.source} user {out.username} ({out.role})")
        elif args.user_command == "passwd":
            users.reset_password(db, args.name, _read_password(), settings.password_min_length)
            _cli_event(db, "user.password_reset", args.name, {})
            print(f"new password set for {args.name}; its sign-ins have ended")
        return 0
    finally:
        db.dispose()


def cmd_verify(args: argparse.Namespace) -> int:
    """Offline: a session in the store, or an evidence bundle, against the trusted public keys alone."""
    from gui_recorder.sealing.keys import load_public_key
    from gui_recorder.sessions.verification import verify_bundle, verify_session

    public = [load_public_key(Path(path).read_bytes()) for path in args.public_key]
    target = Path(args.target)
    if target.suffix == ".zip" and target.is_file():
        report = verify_bundle(target, public)
    else:
        from gui_recorder.storage.stores import tier_stores

        report = verify_session(tier_stores(load_settings(args)), args.target, public)
    print("\n".join(report.lines()))
    report.raise_for_problems()  # TamperedError: exit status 4, the first bad segment named
    return 0


def cmd_public_key(args: argparse.Namespace) -> int:
    """The signing key's public half and fingerprint: what auditors are given to verify with."""
    from gui_recorder.sealing.keys import public_key_pem
    from gui_recorder.sealing.provider import signer

    key = signer(load_settings(args))
    sys.stdout.write(public_key_pem(key.public_key).decode())
    print(f"# fingerprint {key.key_id}", file=sys.stderr)
    return 0


def cmd_rotate_kek(args: argparse.Namespace) -> int:
    from gui_recorder.sealing.provider import keyring
    from gui_recorder.sessions.verification import rotate_kek
    from gui_recorder.storage.stores import tier_stores

    settings = load_settings(args)
    ring = keyring(settings)
    rewrapped, current = rotate_kek(tier_stores(settings), settings.resolved_spool_dir, ring)
    print(f"{rewrapped} data key(s) rewrapped with {ring.current.kek_id}, {current} already were; "
          "no segment was touched. The retired KEKs can now be removed from the settings.")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="gui-recorder", description="gui-recorder: privileged-session recorder for RDP and VNC, built on Apache Guacamole.")
    parser.add_argument("--env-file", help="read settings from this file (e.g. var/dev/gui-recorder.env)")
    parser.add_argument("--secrets-dir", help="read settings (the secrets) from files in this directory, each named "
                                              "after its variable, e.g. GUI_RECORDER_SECRET_KEY (systemd "
                                              "credentials, Docker and Kubernetes secrets)")
    sub = parser.add_subparsers(dest="command", required=True)

    dev = sub.add_parser("dev", help="run the whole stack with demo targets in the foreground")
    dev.add_argument("--var-dir", default="var/dev", help="where the dev stack keeps its data")
    dev.add_argument("--port", type=int, default=8080, help="gateway port (a free one if taken)")
    dev.set_defaults(func=cmd_dev)

    worker = sub.add_parser("worker", help="render and index recorded sessions (background jobs)")
    worker.set_defaults(func=cmd_worker)

    render = sub.add_parser("render", help="render a recording (ours or guacd's own) to WebM video")
    render.add_argument("recording")
    render.add_argument("output", help="the .webm to write (sprite, index and poster go beside it)")
    render.add_argument("--size", help="scale to WIDTHxHEIGHT")
    render.add_argument("--quiet", action="store_true", help="no progress bar")
    render.set_defaults(func=cmd_render)

    importer = sub.add_parser("import", help="ingest a directory of recordings written by guacd (recording-path)")
    importer.add_argument("directory")
    importer.set_defaults(func=cmd_import)

    search = sub.add_parser("search", help="search typed and on-screen text across sessions")
    search.add_argument("query", help='words, "a phrase", prefix*')
    search.add_argument("--user")
    search.add_argument("--connection")
    search.add_argument("--since", help="ISO date/time")
    search.add_argument("--until", help="ISO date/time")
    search.add_argument("--source", choices=["typed", "screen", "terminal", "clipboard", "file"])
    search.add_argument("--limit", type=int, default=50)
    search.add_argument("--json", action="store_true")
    search.set_defaults(func=cmd_search)

    listing = sub.add_parser("settings", help="every setting with its default, bounds and meaning")
    listing.add_argument("--markdown", action="store_true", help="as docs/settings.md")
    listing.set_defaults(func=cmd_settings)

    from gui_recorder.vocabulary import ROLES, USER_SOURCES

    user = sub.add_parser("user", help="manage accounts (the first admin of a production install)")
    user_sub = user.add_subparsers(dest="user_command", required=True)
    add = user_sub.add_parser("add", help="create an account; a local one's password from a prompt or stdin")
    add.add_argument("name")
    add.add_argument("--role", required=True, choices=ROLES)
    add.add_argument("--source", default="local", choices=USER_SOURCES,
                     help="local (a password here) or an external one (signs in through LDAP/OIDC)")
    add.add_argument("--group", action="append", help="a group to add the account to (repeatable)")
    user_sub.add_parser("list", help="every account, with its role, source, state and last sign-in")
    passwd = user_sub.add_parser("passwd", help="set a local account's password (from a prompt or stdin)")
    passwd.add_argument("name")
    user.set_defaults(func=cmd_user)


    verify = sub.add_parser("verify", help="check a sealed recording (a session id, or an evidence bundle .zip) "
                                           "with only the signing public key; exit 4 names the first bad segment")
    verify.add_argument("target", help="a session id (read from the store) or a bundle .zip")
    verify.add_argument("--public-key", required=True, action="append",
                        help="a trusted signing public key (PEM or DER); give it again for each key the gateway "
                             "has signed with (after a change of signing key, the old and the new)")
    verify.set_defaults(func=cmd_verify)

    public = sub.add_parser("public-key", help="print the signing public key (PEM; fingerprint on stderr)")
    public.set_defaults(func=cmd_public_key)

    rotate = sub.add_parser("rotate-kek", help="rewrap every data key with the current KEK (segments untouched)")
    rotate.set_defaults(func=cmd_rotate_kek)

    verify_audit = sub.add_parser("verify-audit", help="check the audit log's hash chain (exit 1 naming the "
                                                       "first event that breaks it)")
    verify_audit.set_defaults(func=cmd_verify_audit)

    serve = sub.add_parser("serve", help="run the gateway (configured by GUI_RECORDER_* variables)")
    serve.add_argument("--port", type=int, default=None)
    serve.set_defaults(func=cmd_serve)
    return parser


def main(argv: list[str] | None = None) -> int:
    # INFO until the settings are read (commands such as `render` need none): `load_settings` applies
    # the configured `log_level`.
    logging.basicConfig(level="INFO", format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except GuiRecorderError as exc:
        # The CLI edge: the message, and an exit code that says whether to fix something (2) or retry (3).
        print(f"gui-recorder: {exc}", file=sys.stderr)
        return exc.exit_code


if __name__ == "__main__":
    sys.exit(main())
