"""Review and evidence bundle for a session recorded through the real stack."""

from __future__ import annotations

import hashlib
import io
import json
import zipfile

from support.sessions import drive_session


async def test_review_and_evidence_bundle(gateway):
    session_id = await drive_session(gateway, "demo-vnc", "echo evidence-check\n")
    with gateway.api("auditor") as auditor:
        made = auditor.post(f"/api/sessions/{session_id}/review", json={"comment": "checked: no issue"})
        assert made.status_code == 201 and made.json()["reviewed_by"] == "auditor"
        row = auditor.get(f"/api/sessions/{session_id}").json()
        assert row["reviews"][-1]["comment"] == "checked: no issue"
        bundle = auditor.get(f"/api/sessions/{session_id}/export")
        assert bundle.status_code == 200 and bundle.headers["content-type"] == "application/zip"
        recording = auditor.get(f"/api/sessions/{session_id}/recording").content
    with gateway.api("vendor") as vendor:
        assert vendor.post(f"/api/sessions/{session_id}/review", json={"comment": "x"}).status_code == 403
        assert vendor.get(f"/api/sessions/{session_id}/export").status_code == 403
    zf = zipfile.ZipFile(io.BytesIO(bundle.content))
    names = set(zf.namelist())
    assert {"recording.guac", "manifest.json", "session.json", "SHA256SUMS"} <= names
    assert zf.read("recording.guac") == recording
    for line in zf.read("SHA256SUMS").decode().splitlines():
        digest, name = line.split("  ", 1)
        assert hashlib.sha256(zf.read(name)).hexdigest() == digest
    manifest = json.loads(zf.read("manifest.json"))
    # A sealed segment stores more than it holds (record framing, tags): plain_size is what it decrypts to.
    assert sum(s.get("plain_size", s["size"]) for s in manifest["segments"]) == len(recording)
    facts = json.loads(zf.read("session.json"))
    assert facts["id"] == session_id and facts["reviews"][-1]["reviewed_by"] == "auditor"
    with gateway.api("admin") as admin:
        actions = {e["action"] for e in admin.get("/api/audit", params={"limit": 50}).json()
                   if e["target"] == session_id}
    assert {"session.review", "session.export", "recording.view"} <= actions
