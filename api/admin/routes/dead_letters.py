"""Admin routes: pushes that gave up, and their replay."""

from __future__ import annotations

from fastapi import APIRouter

router = APIRouter(tags=["dead letters"])
