"""WebSocket tunnel between the browser and guacd (work in progress by the lead)."""

from fastapi import APIRouter

router = APIRouter()
