"""A session's manifest: its segments with sizes and SHA-256, and whether it is complete.

The keys it names come from ``gui_recorder.storage.keys``, the one layout.
"""

from __future__ import annotations


def new_manifest(session_id: str, meta: dict) -> dict:
    return {"version": 1, "session_id": session_id, "meta": meta, "segments": [], "complete": False}
