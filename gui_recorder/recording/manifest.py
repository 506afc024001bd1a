"""Where a session's recording lives in the object store, and its manifest."""

from __future__ import annotations


def session_prefix(session_id: str) -> str:
    return f"sessions/{session_id}/"


def segment_key(session_id: str, index: int) -> str:
    return f"sessions/{session_id}/segments/{index:06d}.guac"


def manifest_key(session_id: str) -> str:
    return f"sessions/{session_id}/manifest.json"


def new_manifest(session_id: str, meta: dict) -> dict:
    return {"version": 1, "session_id": session_id, "meta": meta, "segments": [], "complete": False}


def media_key(session_id: str, name: str) -> str:
    """Rendered media of a session (video, thumbnails, poster), beside its recording."""
    return f"sessions/{session_id}/media/{name}"
