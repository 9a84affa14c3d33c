"""The admin page, served by the router itself: plain HTML, CSS and JavaScript files, no build step and no
CDN (OpenWatch runs in air-gapped and FIPS sites). The page holds no data; it calls the API with a bearer token:
inside OpenWatch the admin's own OpenWatch login (OpenWatchAuth), standalone a pasted token (TokenAuth). The
page learns which from `<html data-auth="openwatch"|"token">`, set here from the router's auth.

Static files have versioned names (app.<version>.js, the version a hash of all of them), cached for a year as
immutable: a new package version changes every name, so a browser never mixes old and new files. index.html,
which names them, is never cached. The plain names still answer (no-cache) for links made before.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from functools import cache
from importlib.resources import files
from typing import Any, Literal

from fastapi import APIRouter, HTTPException
from fastapi.responses import HTMLResponse, Response

from openwatch_backup.api.compressed import CompressedRoute

_STATIC = files("openwatch_backup.api") / "static"
_JS = "text/javascript; charset=utf-8"
_CONTENT_TYPES = {"js": _JS, "css": "text/css; charset=utf-8"}
# The package's own files, listed once at import: no path from a request reaches the file system.
_TYPES = {entry.name: _CONTENT_TYPES[entry.name.rsplit(".", 1)[-1]] for entry in _STATIC.iterdir()
          if entry.name.rsplit(".", 1)[-1] in _CONTENT_TYPES}
# The page loads nothing from elsewhere, so it can forbid everything else.
_CSP = ("default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; img-src 'self' data:; "
        "base-uri 'none'; form-action 'none'; frame-ancestors 'none'")
IMMUTABLE = "public, max-age=31536000, immutable"
LoginMode = Literal["openwatch", "token"]
_NAMES = re.compile(r"""(?<=["/])(""" + "|".join(re.escape(n) for n in _TYPES) + r""")(?=")""")


@dataclass(frozen=True)
class Assets:
    version: str
    html: str
    bodies: dict[str, bytes]  # plain name -> content, its references to the others versioned

    def versioned(self, name: str) -> str:
        return versioned(name, self.version)


def versioned(name: str, version: str) -> str:
    stem, ext = name.rsplit(".", 1)
    return f"{stem}.{version}.{ext}"


@cache
def assets() -> Assets:
    raw = {name: (_STATIC / name).read_bytes() for name in sorted(_TYPES)}
    html = (_STATIC / "index.html").read_text(encoding="utf-8")
    digest = hashlib.sha256()
    for name, body in [*raw.items(), ("index.html", html.encode())]:
        digest.update(name.encode() + b"\0" + body + b"\0")
    version = digest.hexdigest()[:12]
    # Every module is asked for at once instead of level by level as its imports are read (app.js, then what it
    # imports, and so on, five levels deep): a cold load shows the first rows sooner (issue 14 item 8).
    preload = "".join(f'<link rel="modulepreload" href="ui/{name}">\n' for name in raw
                      if name.endswith(".js") and name != "app.js")
    html = html.replace("</head>", preload + "</head>", 1)

    def rename(text: str) -> str:
        return _NAMES.sub(lambda m: versioned(m.group(1), version), text)

    return Assets(version, rename(html), {name: rename(body.decode()).encode() for name, body in raw.items()})


def login_mode(auth: Any) -> LoginMode:
    """How the page signs in for this auth: its `page_login`; an Auth of one's own without it gets the token form."""
    return "openwatch" if getattr(auth, "page_login", "token") == "openwatch" else "token"


@cache
def page_html(mode: LoginMode) -> str:
    html = assets().html
    return re.sub(r"<html\b", f'<html data-auth="{mode}"', html, count=1)


def page_router(auth: Any = None) -> APIRouter:
    router = APIRouter(include_in_schema=False, route_class=CompressedRoute)
    mode = login_mode(auth)

    @router.get("/ui", response_class=HTMLResponse)
    def page() -> HTMLResponse:
        return HTMLResponse(page_html(mode), headers={"Content-Security-Policy": _CSP, "Cache-Control": "no-store"})

    @router.get("/ui/{name}")
    def asset(name: str) -> Response:
        found = assets()
        plain = name.replace(f".{found.version}.", ".", 1)
        # A fixed list: no path from the request reaches the file system; an old version's name is a 404.
        if plain not in _TYPES or (plain != name and name != found.versioned(plain)):
            raise HTTPException(404, detail="no such file")
        cache_control = IMMUTABLE if plain != name else "no-cache"
        return Response(found.bodies[plain], media_type=_TYPES[plain],
                        headers={"Content-Security-Policy": _CSP, "Cache-Control": cache_control})

    return router
