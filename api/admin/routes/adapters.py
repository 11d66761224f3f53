"""Admin routes: outbound partner adapters: enable, disable, exclusions, test, status."""

from __future__ import annotations

from fastapi import APIRouter

router = APIRouter(tags=["adapters"])
