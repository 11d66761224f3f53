"""Admin routes: two-way delivery platforms: external orders, webhook registration, the sync log."""

from __future__ import annotations

from fastapi import APIRouter

router = APIRouter(tags=["platforms"])
