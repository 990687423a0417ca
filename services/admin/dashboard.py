"""The dashboard at `/` and the interactive docs at `/docs`, all served by us, nothing from a
CDN (the machines of a devnet are often offline):

    /                        services/admin/static/index.html (no token: it is static; the
                             page asks for one and sends it as a header, never in a URL)
    /static/{file}           the page's own JS and CSS (package data)
    /vendor/{file}           uPlot and Swagger UI, out of the repo's node_modules (pinned in
                             package.json; scripts/setup.sh installs them); a 503 that says
                             so when one is missing

Every page gets a strict Content-Security-Policy (scripts and connections to this origin
only, no framing) but /docs, whose Swagger UI starts from an inline script.
"""

from __future__ import annotations

from pathlib import Path

from fastapi import APIRouter, Request
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import FileResponse, HTMLResponse

from services.admin.errors import NodeUnavailable, NotFound

__all__ = ["NODE_MODULES", "STATIC", "VENDOR", "router"]

STATIC = Path(__file__).resolve().parent / "static"
NODE_MODULES = Path(__file__).resolve().parents[2] / "node_modules"
VENDOR = {
    "uPlot.iife.min.js": "uplot/dist/uPlot.iife.min.js",
    "uPlot.min.css": "uplot/dist/uPlot.min.css",
    "swagger-ui-bundle.js": "swagger-ui-dist/swagger-ui-bundle.js",
    "swagger-ui.css": "swagger-ui-dist/swagger-ui.css",
    "favicon-32x32.png": "swagger-ui-dist/favicon-32x32.png",
}
OWN = ("dashboard.js", "dashboard.css")
CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; "
    "img-src 'self' data:; connect-src 'self'; font-src 'self'; base-uri 'none'; "
    "form-action 'none'; frame-ancestors 'none'"
)
SECURITY_HEADERS = {
    "Content-Security-Policy": CSP,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "X-Frame-Options": "DENY",
    "Cache-Control": "no-cache",
}

router = APIRouter(include_in_schema=False)


@router.get("/")
def index() -> FileResponse:
    return FileResponse(STATIC / "index.html", media_type="text/html", headers=SECURITY_HEADERS)


@router.get("/static/{name}")
def static(name: str) -> FileResponse:
    if name not in OWN:
        raise NotFound(f"no static file {name}")
    return FileResponse(STATIC / name, headers=SECURITY_HEADERS)


@router.get("/vendor/{name}")
def vendor(name: str) -> FileResponse:
    if name not in VENDOR:
        raise NotFound(f"no vendored file {name}")
    path = NODE_MODULES / VENDOR[name]
    if not path.is_file():
        package = VENDOR[name].split("/")[0]
        raise NodeUnavailable(
            f"{path} is missing: the dashboard's {package} comes from npm (package.json); "
            f"run scripts/setup.sh in {NODE_MODULES.parent}"
        )
    return FileResponse(path, headers=SECURITY_HEADERS)


@router.get("/docs")
def docs(request: Request) -> HTMLResponse:
    """Swagger UI with its assets from /vendor (FastAPI's default loads them from a CDN)."""
    page = get_swagger_ui_html(
        openapi_url=str(request.app.openapi_url),
        title=f"{request.app.title} - docs",
        swagger_js_url="/vendor/swagger-ui-bundle.js",
        swagger_css_url="/vendor/swagger-ui.css",
        swagger_favicon_url="/vendor/favicon-32x32.png",
    )
    page.headers.update({"X-Content-Type-Options": "nosniff", "X-Frame-Options": "DENY"})
    return page
