"""Exported files (Parquet and CSV per restaurant and day), listed and served per key."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated

from fastapi import APIRouter
from fastapi import Path as PathParam
from fastapi.responses import FileResponse
from pydantic import BaseModel

from api.deps import ERRORS, State, require
from api.state import Principal
from partner_signals.exports import list_exports
from partner_signals.problems import ProblemError

router = APIRouter(prefix="/v1/exports", tags=["exports"], responses=ERRORS)


class ExportFile(BaseModel):
    name: str
    restaurant_id: str
    business_date: str
    signal: str
    format: str
    bytes: int
    modified_at: datetime


class ExportList(BaseModel):
    files: list[ExportFile]


async def visible_restaurants(state: State, principal: Principal) -> set[str]:
    if principal.restaurant_id is not None:
        return {principal.restaurant_id}
    async with state.pool.connection() as conn:
        cur = await conn.execute(
            "select restaurant_id from ops.restaurants where company_id = %s",
            (principal.company_id,),
        )
        return {r["restaurant_id"] for r in await cur.fetchall()}


@router.get(
    "",
    response_model=ExportList,
    summary="Exported files this key may read",
    responses={
        200: {
            # OpenAPI links, for clients and schemathesis's stateful tests: a listed
            # file, and the signals and events of a restaurant the key sees.
            "links": {
                "first_file": {
                    "operationRef": "#/paths/~1v1~1exports~1%7Bname%7D/get",
                    "description": "Read a listed file by its name",
                    "parameters": {"name": "$response.body#/files/0/name"},
                },
                **{
                    f"restaurant_{signals}": {
                        "operationRef": (
                            f"#/paths/~1v1~1restaurants~1%7Brestaurant_id%7D~1{signals}/get"
                        ),
                        "description": f"The {signals} signals of a listed file's restaurant",
                        "parameters": {"restaurant_id": "$response.body#/files/0/restaurant_id"},
                    }
                    for signals in ("workforce", "crm")
                },
                "restaurant_events": {
                    "operationRef": "#/paths/~1v1~1events/get",
                    "description": "The events of a listed file's restaurant",
                    "parameters": {"restaurant_id": "$response.body#/files/0/restaurant_id"},
                },
            }
        }
    },
)
async def exports(
    state: State, principal: Annotated[Principal, require("read:exports")]
) -> ExportList:
    allowed = await visible_restaurants(state, principal)
    files = [
        ExportFile(
            name=f.name,
            restaurant_id=f.restaurant_id,
            business_date=f.business_date,
            signal=f.signal,
            format=f.format,
            bytes=f.path.stat().st_size,
            modified_at=datetime.fromtimestamp(f.path.stat().st_mtime, UTC),
        )
        for f in list_exports(Path(state.settings.exports_dir))
        if f.restaurant_id in allowed
    ]
    return ExportList(files=files)


@router.get(
    "/{name:path}",
    summary="One exported file",
    response_class=FileResponse,
    responses={200: {"content": {"application/octet-stream": {}, "text/csv": {}}}},
)
async def export_file(
    state: State,
    principal: Annotated[Principal, require("read:exports")],
    name: Annotated[str, PathParam(max_length=300)],
) -> FileResponse:
    allowed = await visible_restaurants(state, principal)
    for f in list_exports(Path(state.settings.exports_dir)):
        if f.name == name:
            if f.restaurant_id not in allowed:
                raise ProblemError(403, "foreign_restaurant", "not one of this key's restaurants")
            media = "text/csv" if f.format == "csv" else "application/vnd.apache.parquet"
            return FileResponse(f.path, media_type=media, filename=Path(name).name)
    raise ProblemError(404, "not_found", "no such export")
