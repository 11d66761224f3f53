"""partner_signals.problems in one small app: an unexpected exception is a 500 problem that
says nothing of it while the log has it under the request id; ids are kept when sane."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from partner_signals.problems import (
    MEDIA_TYPE,
    ProblemError,
    RequestIdFilter,
    install_problem_handlers,
    sane_request_id,
    set_request_id,
)
from partner_signals.processes import LOG_CONFIG


def small_app() -> FastAPI:
    app = FastAPI()
    install_problem_handlers(app, logger=logging.getLogger("tests.problems"))

    @app.get("/boom")
    async def boom() -> None:
        raise RuntimeError("password=hunter2 in an internal message")

    @app.get("/teapot")
    async def teapot() -> None:
        raise ProblemError(418, "teapot", "short and stout", {"X-Kind": "tea"}, pot=1)

    @app.get("/n")
    async def number(n: int) -> int:
        return n

    return app


@pytest.fixture
def client() -> TestClient:
    return TestClient(small_app(), raise_server_exceptions=False)


def test_an_unexpected_exception_is_a_500_that_tells_nothing(
    client: TestClient, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="tests.problems")
    logging.getLogger("tests.problems").addFilter(RequestIdFilter())
    response = client.get("/boom", headers={"X-Request-ID": "boom-1"})
    assert response.status_code == 500
    assert response.headers["content-type"] == MEDIA_TYPE
    assert response.headers["x-request-id"] == "boom-1"
    body = response.json()
    assert (body["code"], body["request_id"]) == ("internal_error", "boom-1")
    assert "hunter2" not in response.text and "Traceback" not in response.text
    (record,) = [r for r in caplog.records if r.name == "tests.problems"]
    assert record.request_id == "boom-1"  # type: ignore[attr-defined]
    assert record.exc_info and "hunter2" in str(record.exc_info[1])


def test_a_problem_error_keeps_its_status_headers_and_members(client: TestClient) -> None:
    response = client.get("/teapot")
    assert response.status_code == 418 and response.headers["x-kind"] == "tea"
    body = response.json()
    assert (body["code"], body["detail"], body["pot"]) == ("teapot", "short and stout", 1)
    assert body["request_id"] == response.headers["x-request-id"]


def test_invalid_input_names_the_field(client: TestClient) -> None:
    body = client.get("/n", params={"n": "x"}).json()
    assert body["code"] == "validation_failed" and body["errors"][0]["field"] == "n"
    assert client.get("/n", params={"n": "2"}).headers["x-request-id"]  # on success too


@pytest.mark.parametrize("given", ["", "a b", "x" * 65, "é", "a\nb", "id;drop"])
def test_an_insane_request_id_is_replaced(given: str) -> None:
    made = sane_request_id(given)
    assert made != given and len(made) == 32
    assert sane_request_id("req-1.2:3_4") == "req-1.2:3_4"


def test_the_log_config_prints_the_request_id() -> None:
    """logging.json's formatter and filter, as uvicorn's dictConfig builds them (built
    here by hand: configuring this process's logging would change other tests')."""
    config = json.loads(Path(LOG_CONFIG).read_text())
    assert config["filters"]["request_id"]["()"] == "partner_signals.problems.RequestIdFilter"
    assert "request_id" in config["handlers"]["stderr"]["filters"]
    formatter = logging.Formatter(config["formatters"]["default"]["format"])
    record = logging.LogRecord("ingest", logging.INFO, __file__, 1, "refused", None, None)
    set_request_id("req-42")
    assert RequestIdFilter().filter(record)
    assert "[request_id=req-42] refused" in formatter.format(record)
