"""The admin page keeps its strict CSP inside OpenWatch: OpenWatch's security-headers middleware overwrites every
response's policy (with 'unsafe-inline', and 'unsafe-eval' in debug); the README's `app.add_middleware(KeepPageCSP)`,
added after it, puts the page's back on the page only."""

from __future__ import annotations

import warnings
from collections.abc import Callable
from typing import Any

import pytest
from fastapi import FastAPI, Request, Response
from fastapi.responses import JSONResponse

from openwatch_backup.api import TokenAuth, backups_router
from openwatch_backup.api.csp import PAGE_CSP, KeepPageCSP

with warnings.catch_warnings():
    from starlette.exceptions import StarletteDeprecationWarning

    warnings.simplefilter("ignore", StarletteDeprecationWarning)
    from starlette.testclient import TestClient

# OpenWatch's values (backend/app/config.py SECURITY_HEADERS and main.py's dev_csp at a12e8f1e).
OPENWATCH_CSP = ("default-src 'self'; script-src 'self' 'unsafe-inline'; style-src 'self' 'unsafe-inline'; "
                 "img-src 'self' data:; connect-src 'self'; font-src 'self'; frame-src 'none'; object-src 'none'")
OPENWATCH_DEBUG_CSP = ("default-src 'self'; script-src 'self' 'unsafe-inline' 'unsafe-eval'; "
                       "style-src 'self' 'unsafe-inline'; img-src 'self' data:; "
                       "connect-src 'self' http://localhost:8000 http://localhost:8002 ws://localhost:3000; "
                       "font-src 'self'; frame-src 'none'; object-src 'none'")


def openwatch_app(*, debug: bool, keep_ours: bool) -> FastAPI:
    """OpenWatch's main.py in miniature: its security-headers middleware, the backup router under /api, then (as
    the README says) KeepPageCSP added after the middleware."""
    app = FastAPI()

    @app.middleware("http")
    async def security_headers_middleware(request: Request, call_next: Callable[[Request], Any]) -> Response:
        response: Response = await call_next(request)
        response.headers["Content-Security-Policy"] = OPENWATCH_DEBUG_CSP if debug else OPENWATCH_CSP
        response.headers["X-Frame-Options"] = "DENY"
        return response

    @app.get("/health")
    def health() -> JSONResponse:
        return JSONResponse({"status": "healthy"})

    app.include_router(backups_router(auth=TokenAuth("t"), submit=lambda kind, run_id: None),
                       prefix="/api/system/backups")
    if keep_ours:
        app.add_middleware(KeepPageCSP)
    return app


@pytest.mark.parametrize("debug", [False, True])
def test_openwatch_overwrites_the_page_policy_and_keeppagecsp_restores_it(debug: bool) -> None:
    with TestClient(openwatch_app(debug=debug, keep_ours=False)) as client:
        page = client.get("/api/system/backups/ui")
        assert page.status_code == 200
        assert page.headers["content-security-policy"] == (OPENWATCH_DEBUG_CSP if debug else OPENWATCH_CSP)
    with TestClient(openwatch_app(debug=debug, keep_ours=True)) as client:
        for path in ("/api/system/backups/ui", "/api/system/backups/ui/app.js", "/api/system/backups/ui/nope"):
            response = client.get(path)
            assert response.headers.get_list("content-security-policy") == [PAGE_CSP], path
            assert response.headers["x-frame-options"] == "DENY"  # OpenWatch's other headers stay
        assert "unsafe" not in PAGE_CSP
        assert "script-src 'self';" in PAGE_CSP
        # Everything else keeps OpenWatch's policy, the API included.
        assert client.get("/health").headers["content-security-policy"].startswith("default-src 'self'")
        assert client.get("/health").headers["content-security-policy"] != PAGE_CSP
        assert client.get("/api/system/backups/status").headers["content-security-policy"] != PAGE_CSP
        assert client.get("/api/system/backups/uix").headers["content-security-policy"] != PAGE_CSP
