"""The admin page, served by the router itself: plain HTML, CSS and JavaScript files, no build step and no
CDN (OpenWatch runs in air-gapped and FIPS sites). The page holds no data; it calls the API with a token."""

from __future__ import annotations

from importlib.resources import files

from fastapi import APIRouter, HTTPException
from fastapi.responses import HTMLResponse, Response

_STATIC = files("openwatch_backup.api") / "static"
_TYPES = {"app.js": "text/javascript; charset=utf-8", "common.js": "text/javascript; charset=utf-8",
          "panels.js": "text/javascript; charset=utf-8", "offsite.js": "text/javascript; charset=utf-8",
          "config.js": "text/javascript; charset=utf-8",
          "app.css": "text/css; charset=utf-8"}
# The page loads nothing from elsewhere, so it can forbid everything else.
_CSP = ("default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; img-src 'self' data:; "
        "base-uri 'none'; form-action 'none'; frame-ancestors 'none'")


def page_router() -> APIRouter:
    router = APIRouter(include_in_schema=False)

    @router.get("/ui", response_class=HTMLResponse)
    def page() -> HTMLResponse:
        html = (_STATIC / "index.html").read_text(encoding="utf-8")
        return HTMLResponse(html, headers={"Content-Security-Policy": _CSP, "Cache-Control": "no-store"})

    @router.get("/ui/{name}")
    def asset(name: str) -> Response:
        if name not in _TYPES:  # a fixed list: no path from the request reaches the file system
            raise HTTPException(404, detail="no such file")
        return Response((_STATIC / name).read_bytes(), media_type=_TYPES[name],
                        headers={"Content-Security-Policy": _CSP, "Cache-Control": "no-store"})

    return router
