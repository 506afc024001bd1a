"""What ``/api/health`` reports: each component the gateway depends on, and an overall status.

* ``database``: a ``SELECT 1``;
* ``object_store``: the hot bucket answers;
* ``guacd``: a protocol-level probe that starts no guacd child (see ``guacd_answers``);
* ``uploader``: the supervised upload task, its last error, sessions stuck in
  retries or quarantined, and the age of the oldest byte not yet uploaded;
* ``spool``: its size, free space, and recording failures since start;
* ``workers``: the job queue they drain (a separate process: the queue is how the
  gateway sees them): ``degraded`` when a job has waited longer than
  ``WORKER_LAG_SECONDS`` (no worker is running, or they cannot keep up).

Overall: ``down`` (HTTP 503) when no session can be opened (database or guacd),
``degraded`` when sessions are still recorded but something needs an operator
(object store down, uploader errors, quarantined sessions), else ``ok``.
The public answer carries states and figures only; error texts and session ids
(which may name internal endpoints) are for ``ops.read``.
"""

from __future__ import annotations

import asyncio
import shutil
import socket
import ssl
import time

from sqlalchemy import text

from gui_recorder.db import jobs
from gui_recorder.errors import GuiRecorderError
from gui_recorder.gateway.services import Services

OK, DEGRADED, DOWN = "ok", "degraded", "down"
PROBE_TIMEOUT_SECONDS = 2.0
WORKER_LAG_SECONDS = 600.0
# A connection id that never exists: guacd answers (closes, or says `error`) without forking a client,
# so probing leaves no trace in guacd's "Creating new client" log and costs no process.
_PROBE = b"6.select,37.$00000000-0000-0000-0000-000000000000;"


def guacd_answers(host: str, port: int, timeout: float = PROBE_TIMEOUT_SECONDS,
                  tls: ssl.SSLContext | None = None, server_name: str | None = None) -> tuple[bool, str]:
    """True when guacd's daemon reads and answers. A listening socket alone is not enough: guacd's
    children keep it open after the daemon died, and connections there hang (issue 10). With
    ``tls`` its certificate must verify too: an untrusted guacd gets no session, so it is down."""
    try:
        with socket.create_connection((host, port), timeout=timeout) as raw:
            with (tls.wrap_socket(raw, server_hostname=server_name or host) if tls else raw) as s:
                s.sendall(_PROBE)
                s.settimeout(timeout)
                s.recv(4096)  # EOF or an `error`: either way the daemon handled the request
                return True, "answers"
    except ssl.SSLCertVerificationError as exc:
        return False, f"guacd at {host}:{port} presented a certificate that does not verify ({exc.verify_message})"
    except ssl.SSLError as exc:
        return False, f"no TLS with guacd at {host}:{port} ({exc.reason or exc})"
    except TimeoutError:
        return False, f"guacd at {host}:{port} accepts connections but does not answer"
    except OSError as exc:
        return False, f"guacd at {host}:{port} is unreachable: {exc.strerror or exc}"


def _database(db) -> tuple[bool, str]:
    try:
        with db.session() as s:
            s.execute(text("SELECT 1"))
        return True, "answers"
    except Exception as exc:  # noqa: BLE001 - any failure means "down"; the text is for operators
        return False, f"{type(exc).__name__}: {exc}"


def _store(store) -> tuple[bool, str]:
    try:
        return (True, "answers") if store.bucket_exists() else (False, f"bucket {store.bucket} is missing")
    except Exception as exc:  # noqa: BLE001
        return False, f"{type(exc).__name__}: {exc}"


async def _timed(fn, *args) -> tuple[bool, str]:
    try:
        return await asyncio.wait_for(asyncio.to_thread(fn, *args), PROBE_TIMEOUT_SECONDS + 1)
    except TimeoutError:
        return False, "no answer in time"


async def report(services: Services, *, detail: bool) -> dict:
    settings, recordings = services.settings, services.recordings
    uploader = recordings.uploader
    # async: the three probes run at once, each bounded in time (a thread pool route could not bound them).
    pool = settings.guacd_pool
    (db_ok, db_why), (store_ok, store_why), *guacds = await asyncio.gather(
        _timed(_database, services.db), _timed(_store, recordings.store),
        *(_timed(guacd_answers, host, port, PROBE_TIMEOUT_SECONDS, services.guacd.tls, services.guacd.server_name)
          for host, port in pool))
    # Sessions can be opened while any guacd answers; one down of several is degraded, not down.
    guacd_ok = any(ok for ok, _ in guacds)
    guacd_why = "; ".join(f"{host}:{port}: {why}" for (host, port), (_, why) in zip(pool, guacds))
    up = await asyncio.to_thread(uploader.state)
    drives = await asyncio.to_thread(recordings.store.drives) if store_ok else None
    try:
        queued, running, oldest = await asyncio.to_thread(jobs.backlog, services.db)
        workers = {"status": DEGRADED if oldest is not None and oldest > WORKER_LAG_SECONDS else OK,
                   "queued": queued, "running": running,
                   "oldest_queued_seconds": round(oldest, 1) if oldest is not None else None}
    except GuiRecorderError:
        workers = {"status": DOWN}  # the database is down: reported above
    try:
        free = shutil.disk_usage(recordings.spool.root).free if recordings.spool.root.exists() else None
    except OSError:
        free = None
    uploader_ok = recordings.running() and not up["stuck"] and not up["quarantined"]
    components = {
        "database": {"status": OK if db_ok else DOWN},
        # An erasure-coded store serves on with drives offline: degraded, so the loss is seen before another.
        "object_store": {"status": DOWN if not store_ok else DEGRADED if drives and set(drives) - {"ok"} else OK,
                         **({"drives": drives} if drives else {})},
        "guacd": {"status": DOWN if not guacd_ok else OK if all(ok for ok, _ in guacds) else DEGRADED,
                  "answering": sum(ok for ok, _ in guacds), "configured": len(pool)},
        "uploader": {"status": OK if uploader_ok else DEGRADED, "running": recordings.running(),
                     "errors": up["errors"], "retrying": len(up["retrying"]), "stuck": len(up["stuck"]),
                     "quarantined": len(up["quarantined"]),
                     "oldest_unuploaded_seconds": round(up["oldest_unuploaded_seconds"], 1)},
        "spool": {"status": OK, "bytes": await asyncio.to_thread(recordings.spool.size_bytes), "free_bytes": free,
                  "live_sessions": len(recordings.live), "recording_failures": recordings.recording_failures},
        "workers": workers,
    }
    if detail:
        components["database"]["detail"] = db_why
        components["object_store"]["detail"] = store_why
        components["guacd"]["detail"] = guacd_why
        components["uploader"].update(last_error=up["last_error"], last_error_at=up["last_error_at"],
                                      last_success_at=up["last_success_at"], stuck_sessions=up["stuck"],
                                      quarantined_sessions=up["quarantined"],
                                      retrying_sessions=up["retrying"])
        failure = recordings.last_recording_failure
        components["spool"]["last_recording_failure"] = (
            {"at": failure[0], "detail": failure[1]} if failure else None)
    if not (db_ok and guacd_ok):
        overall = DOWN
    elif not store_ok or not uploader_ok or up["last_error"] or workers["status"] != OK \
            or components["guacd"]["status"] != OK or components["object_store"]["status"] != OK:
        overall = DEGRADED
    else:
        overall = OK
    return {"status": overall, "at": time.time(), "components": components}
