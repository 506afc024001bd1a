"""``GET /api/vocabulary``: the words of ``gui_recorder.vocabulary`` for the web pages.

The pages take roles, statuses, protocols and capabilities from here (and the
signed-in user's own capabilities from ``/api/auth/me``), never from copies of
their own, so a new status or capability needs no JavaScript change.
"""

from __future__ import annotations

from fastapi import APIRouter, Depends

from gui_recorder.gateway.auth import public
from gui_recorder.vocabulary import vocabulary

router = APIRouter(tags=["vocabulary"])


@router.get("/api/vocabulary", dependencies=[Depends(public("names only, the same for everyone"))])
def words() -> dict[str, list[str] | dict[str, list[str]]]:
    return vocabulary()
