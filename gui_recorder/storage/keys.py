"""Where everything of a session lives in a bucket: the one object-key layout.

Every part that reads or writes objects (the uploader, the importer, the render
worker, the media API, tiering, forgetting) takes its keys from here, so that
moving, listing and deleting "everything of a session" is one prefix::

    sessions/<id>/manifest.json           the recording's manifest (segments, sizes, SHA-256)
    sessions/<id>/segments/000001.guac    the recording, in segments
    sessions/<id>/media/<name>            rendered media: video.webm, video-info.json, thumbnails...
    sessions/<id>/files/<sha256>          files transferred in the session, kept as evidence by policy
    sessions/<id>/datakey.json            sealed recordings: the data key, wrapped by a KEK (rotation rewrites it)
"""

from __future__ import annotations


def session_prefix(session_id: str) -> str:
    return f"sessions/{session_id}/"


def segment_key(session_id: str, index: int) -> str:
    return f"{session_prefix(session_id)}segments/{index:06d}.guac"


def manifest_key(session_id: str) -> str:
    return f"{session_prefix(session_id)}manifest.json"


def media_key(session_id: str, name: str) -> str:
    """Rendered media of a session (video, thumbnails, poster), beside its recording."""
    return f"{session_prefix(session_id)}media/{name}"


def file_key(session_id: str, sha256: str) -> str:
    """A file uploaded or downloaded in the session (its bytes, named by their SHA-256: the key checks them)."""
    return f"{session_prefix(session_id)}files/{sha256}"


def kept_file_name(key: str) -> str:
    """A kept file's name within its session ("files/<sha256>"): what its sealed chunks are bound to,
    and its name in the evidence bundle."""
    return "files/" + key.rsplit("/", 1)[1]


def data_key_key(session_id: str) -> str:
    """A sealed recording's wrapped data key: its own object, so KEK rotation rewrites nothing else."""
    return f"{session_prefix(session_id)}datakey.json"
