"""Admin routes: inbound integrations (payment and delivery platforms): enable, disable, rotate, test, status."""

from __future__ import annotations

from fastapi import APIRouter

router = APIRouter(tags=["inbound"])
