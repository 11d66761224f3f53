"""Admin routes: the on-call operator's first answer."""

from __future__ import annotations

from fastapi import APIRouter

router = APIRouter(tags=["health"])
