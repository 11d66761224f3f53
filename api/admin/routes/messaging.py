"""Admin routes: guest and staff messaging: templates per restaurant, opt-ins and opt-outs."""

from __future__ import annotations

from fastapi import APIRouter

router = APIRouter(tags=["messaging"])
