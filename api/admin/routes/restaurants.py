"""Admin routes: restaurants of a company, their names and time zones."""

from __future__ import annotations

from fastapi import APIRouter

router = APIRouter(tags=["restaurants"])
