"""Ended sessions get a seekable video from the real worker; a killed worker's job is retried."""

from __future__ import annotations

import base64
import os
import signal
import subprocess
import sys

import cv2
import numpy as np

from conftest import run_async, wait_for
from support.sessions import drive_session, record_with_guacd
from gui_recorder.cli import settings_env
from gui_recorder.db import Database
from gui_recorder.storage import write_store
from gui_recorder.sessions.imports import import_file
from gui_recorder.storage.keys import media_key
from gui_recorder.render import Display, StreamReport, iter_frames, read_instructions
from gui_recorder.settings import Settings
from gui_recorder.db import jobs


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    mse = np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2)
    return float("inf") if mse == 0 else 10 * np.log10(255 ** 2 / mse)


def frame_at(recording: bytes, offset_ms: int) -> np.ndarray:
    """The exact frame shown at ``offset_ms`` (the last frame at or before it)."""
    shown = None
    for offset, frame, _ in iter_frames(read_instructions(recording, StreamReport()), Display()):
        if offset > offset_ms:
            break
        shown = frame.copy()
    return shown


def test_ended_session_gets_a_video_that_seeks_in_chromium(gateway, worker, browser, artifacts):
    session_id = run_async(drive_session(gateway, "demo-vnc", "echo video-check\nls -la /usr\n", seconds=6))
    with gateway.api("auditor") as auditor:
        info = wait_for(lambda: auditor.get(f"/api/sessions/{session_id}/video-info").status_code == 200
                        and auditor.get(f"/api/sessions/{session_id}/video-info").json(), what="the render job")
        recording = auditor.get(f"/api/sessions/{session_id}/recording").content
        ranged = auditor.get(f"/api/sessions/{session_id}/video", headers={"Range": "bytes=0-99"})
        assert ranged.status_code == 206 and len(ranged.content) == 100
        assert ranged.headers["content-range"].startswith("bytes 0-99/")
        assert auditor.get(f"/api/sessions/{session_id}/video", headers={"Range": "bytes=99999999-"}).status_code == 416
        thumbs = auditor.get(f"/api/sessions/{session_id}/thumbnails").json()
        assert thumbs["items"] and thumbs["sprite_url"].endswith("sprite.jpg")
        one = auditor.get(f"/api/sessions/{session_id}/thumbnails", params={"t": 3000})
        assert one.headers["content-type"] == "image/jpeg" and one.content[:2] == b"\xff\xd8"
        assert auditor.get(f"/api/sessions/{session_id}/poster").content[:2] == b"\xff\xd8"
        row = auditor.get(f"/api/sessions/{session_id}").json()
    with gateway.api("vendor") as vendor:
        assert vendor.get(f"/api/sessions/{session_id}/video").status_code == 403
    assert abs(info["duration_ms"] - row["recording"]["duration_ms"]) <= 40, "video lasts the session"

    middle = info["duration_ms"] // 2
    expected = frame_at(recording, middle)
    context = browser.new_context(bypass_csp=True)
    page = context.new_page()
    page.goto(gateway.url)
    page.fill("#username", "auditor")
    page.fill("#password", gateway.accounts["auditor"])
    page.click("#login-submit")
    page.wait_for_function("document.body?.dataset.view === 'connections'")
    data_url = page.evaluate(
        """async ([id, t]) => {
            const video = document.createElement('video');
            video.muted = true;
            video.src = `api/sessions/${id}/video`;
            document.body.appendChild(video);
            await new Promise((ok, fail) => { video.onloadeddata = ok; video.onerror = () => fail(video.error); });
            await new Promise((ok) => { video.onseeked = ok; video.currentTime = t / 1000; });
            const canvas = document.createElement('canvas');
            canvas.width = video.videoWidth; canvas.height = video.videoHeight;
            const ctx = canvas.getContext('2d');
            // Headless Chromium may hand out the seeked frame a few paints later.
            for (let i = 0; i < 50; i++) {
                ctx.drawImage(video, 0, 0);
                const px = ctx.getImageData(0, 0, canvas.width, canvas.height).data;
                let lit = 0;
                for (let j = 0; j < px.length; j += 4096) lit += px[j] + px[j + 1] + px[j + 2];
                if (lit > 0) break;
                await new Promise((ok) => setTimeout(ok, 100));
            }
            return canvas.toDataURL('image/png');
        }""",
        [session_id, middle],
    )
    context.close()
    shown = cv2.imdecode(np.frombuffer(base64.b64decode(data_url.split(",", 1)[1]), np.uint8), cv2.IMREAD_COLOR)
    cv2.imwrite(str(artifacts / "video-seek-middle-chromium.png"), shown)
    cv2.imwrite(str(artifacts / "video-seek-middle-expected.png"), expected)
    shown = shown[: expected.shape[0], : expected.shape[1]]
    assert psnr(shown, expected) >= 30, psnr(shown, expected)


def test_killed_worker_leaves_its_job_to_be_retried(stack, tmp_path):
    settings = Settings(var_dir=tmp_path / "var", secret_key="k" * 32, s3_endpoint=stack.minio.endpoint,
                        s3_access_key=stack.minio.access_key, s3_secret_key=stack.minio.secret_key,
                        hot_bucket="kill-test", worker_lease_seconds=2, tiering_interval_seconds=1e6)
    db = Database(settings)
    db.create_all()
    long = run_async(record_with_guacd(stack, tmp_path / "rec", "busy", "ls -laR /usr/lib\n", seconds=8))
    imported = import_file(db, write_store(settings), long)
    jobs.enqueue(db, "render", imported.session_id)
    env = {**os.environ, **settings_env(settings)}

    def start_worker():
        return subprocess.Popen([sys.executable, "-m", "gui_recorder.cli", "worker"], env=env,
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

    first = start_worker()
    try:
        wait_for(lambda: (job := jobs.job_state(db, "render", imported.session_id)) and job.state == "running",
                 timeout=60, interval=0.05, what="the first worker to take the job")
        first.send_signal(signal.SIGKILL)
        first.wait(10)
        job = jobs.job_state(db, "render", imported.session_id)
        assert job.state == "running", "killed mid-render"
        assert not write_store(settings).exists(media_key(imported.session_id, "video-info.json")), \
            "nothing half-done is published"
    finally:
        if first.poll() is None:
            first.kill()
    second = start_worker()
    try:
        done = wait_for(lambda: (job := jobs.job_state(db, "render", imported.session_id)) and job.state == "done"
                        and job, timeout=120, what="the retried job")
        assert done.attempts == 2
        info = write_store(settings).get_json(media_key(imported.session_id, "video-info.json"))
        assert info["duration_ms"] > 7000
    finally:
        second.terminate()
        second.wait(30)


def test_two_workers_share_the_queue_and_a_stalled_ones_run_does_not_count(stack, tmp_path):
    """Two worker processes (own temp directories) on one queue; the one rendering is frozen (SIGSTOP, its
    whole process group: a paused VM) past its lease. The other takes the job and completes it; the frozen
    one, thawed, finds its lease gone, stops its render and its result is not counted."""
    settings = Settings(var_dir=tmp_path / "var", secret_key="k" * 32, s3_endpoint=stack.minio.endpoint,
                        s3_access_key=stack.minio.access_key, s3_secret_key=stack.minio.secret_key,
                        hot_bucket="stall-test", worker_lease_seconds=2, tiering_interval_seconds=1e6)
    db = Database(settings)
    db.create_all()
    long = run_async(record_with_guacd(stack, tmp_path / "rec", "busy", "ls -laR /usr/lib\n", seconds=8))
    imported = import_file(db, write_store(settings), long)
    workers = {}
    for name in ("a", "b"):
        temp = tmp_path / f"tmp-{name}"
        temp.mkdir()
        with open(tmp_path / f"worker-{name}.log", "wb") as log:
            proc = subprocess.Popen([sys.executable, "-m", "gui_recorder.cli", "worker"],
                                    env={**os.environ, **settings_env(settings), "TMPDIR": str(temp)},
                                    stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        workers[proc.pid] = (proc, tmp_path / f"worker-{name}.log")
    try:
        jobs.enqueue(db, "render", imported.session_id)
        running = wait_for(lambda: (job := jobs.job_state(db, "render", imported.session_id)) and
                           job.state == "running" and job, timeout=60, interval=0.05, what="a worker to take the job")
        holder = int(running.worker.rsplit(":", 1)[1])
        (other,) = set(workers) - {holder}
        os.killpg(holder, signal.SIGSTOP)
        try:
            taken = wait_for(lambda: (job := jobs.job_state(db, "render", imported.session_id)) and
                             job.worker.endswith(f":{other}") and job, timeout=60, interval=0.1,
                             what="the other worker to take the lapsed lease")
            assert taken.attempts == 2
        finally:
            os.killpg(holder, signal.SIGCONT)
        done = wait_for(lambda: (job := jobs.job_state(db, "render", imported.session_id)) and job.state == "done"
                        and job, timeout=120, what="the job, completed by the other worker")
        assert done.worker.endswith(f":{other}") and done.attempts == 2
        holder_log = workers[holder][1]
        wait_for(lambda: "taken over by another worker" in holder_log.read_text(), timeout=60, interval=0.2,
                 what="the thawed worker to give the job up")
        assert "done in" not in holder_log.read_text(), "the stalled run is not counted as the job's"
        after = jobs.job_state(db, "render", imported.session_id)
        assert (after.state, after.worker, after.attempts) == ("done", done.worker, 2), "and changed nothing"
        info = write_store(settings).get_json(media_key(imported.session_id, "video-info.json"))
        assert info["duration_ms"] > 7000
    finally:
        for proc, _ in workers.values():
            os.killpg(proc.pid, signal.SIGCONT)
            proc.terminate()
            proc.wait(30)
