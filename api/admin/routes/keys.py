"""Admin routes: partner API keys and ingest keys."""

from __future__ import annotations

from fastapi import APIRouter

router = APIRouter(tags=["keys"])
