"""The dashboard's routes: each page as HTML under ``/ui`` and as JSON under ``/api``, sign-in, actions, static
files; as an app of its own (``loopline ui``) or mounted in the prediction service (``loopline serve --ui``).

Handlers are plain functions: FastAPI runs them on its thread pool, so the store's blocking reads never hold the
event loop (and in the prediction service never delay a prediction).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs, quote

from fastapi import APIRouter, FastAPI, Request
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from starlette.staticfiles import StaticFiles

from loopline.core.errors import ConflictError, LooplineError, NotFoundError
from loopline.report import finite
from loopline.ui._actions import ACTIONS
from loopline.ui._auth import SESSION_COOKIE, SESSION_SECONDS, Auth
from loopline.ui._html import Markup, document, escape, link, muted, tag
from loopline.ui._page import Page, Params, UIError, View

if TYPE_CHECKING:
    from loopline.serve import ServeSettings
    from loopline.store import Store

UI = "/ui"
API = "/api"
STATIC = Path(__file__).parent / "static"
_MAX_FORM = 8192
SECURITY_HEADERS = {
    # no inline script anywhere: data can never run as code; ECharts sets inline styles
    "Content-Security-Policy": (
        "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; "
        "connect-src 'self'; frame-ancestors 'none'; form-action 'self'; base-uri 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "same-origin",
    "Cache-Control": "no-store",
}


def ui_router(store: Store, auth: Auth, pages: Sequence[Page] | None = None) -> APIRouter:
    """Every dashboard route over ``store``: ``/ui...`` pages, ``/api...`` data, sign-in, actions."""
    from loopline.ui.pages import all_pages

    pages = list(pages) if pages is not None else all_pages()
    nav = [(p.nav, f"{UI}{p.path}") for p in pages if p.nav]
    router = APIRouter()

    def view_for(request: Request) -> View:
        session = auth.session(request)
        return View(UI, admin=session is not None, csrf=auth.csrf(session))

    def html(request: Request, title: str, body: Any, *, status: int = 200, active: str = "") -> HTMLResponse:
        view = view_for(request)
        notice = request.query_params.get("notice")
        shown = Markup(tag("p", notice[:300], class_="notice") + escape(body)) if notice else body
        user = _user_box(view, auth)
        page = document(title, shown, nav=nav, active=active, user=user, static=f"{UI}/static")
        return HTMLResponse(page, status_code=status, headers=SECURITY_HEADERS)

    def failure(request: Request, error: LooplineError, *, as_json: bool) -> Response:
        status = _status(error)
        body = {"error": error.message, **({"hint": error.hint} if error.hint else {})}
        if as_json:
            return JSONResponse(body, status_code=status, headers=SECURITY_HEADERS)
        content = Markup(tag("p", error.message, class_="error") + (muted(error.hint) if error.hint else ""))
        return html(
            request, f"{status}: {'not found' if status == 404 else 'cannot show this'}", content, status=status
        )

    for page in pages:
        _add_page(router, page, html, failure, view_for, store)

    router.add_api_route(UI, lambda: RedirectResponse(f"{UI}/", 307), methods=["GET"], include_in_schema=False)

    @router.get(f"{UI}/login", include_in_schema=False)
    def login_form(request: Request) -> HTMLResponse:
        if auth.token is None:
            body = muted("Actions are disabled: start the dashboard with LOOPLINE_TOKEN set to enable them.")
        else:
            body = Markup(
                f'<form method="post" action="{UI}/login" class="login"><label>admin token '
                '<input type="password" name="token" autocomplete="current-password" required></label>'
                "<button type=submit>sign in</button></form>"
            )
        return html(request, "Sign in", body)

    @router.post(f"{UI}/login", include_in_schema=False)
    async def login(request: Request) -> Response:
        fields = await _form(request)
        try:
            if not auth.valid_token(str(fields.get("token", ""))):
                raise UIError(403, "that is not the admin token.", hint="Use the value of LOOPLINE_TOKEN.")
        except UIError as error:
            return failure(request, error, as_json=False)
        response = RedirectResponse(f"{UI}/?notice=" + quote("signed in"), 303)
        response.set_cookie(
            SESSION_COOKIE, auth.new_session(), max_age=SESSION_SECONDS, httponly=True, samesite="strict",
            secure=request.url.scheme == "https", path="/",
        )  # fmt: skip
        return response

    @router.post(f"{UI}/logout", include_in_schema=False)
    async def logout(request: Request) -> Response:
        response = RedirectResponse(f"{UI}/?notice=" + quote("signed out"), 303)
        response.delete_cookie(SESSION_COOKIE, path="/")
        return response

    @router.post(UI + "/actions/{name}", include_in_schema=False)
    async def form_action(request: Request, name: str) -> Response:
        fields = await _form(request)
        try:
            done = _act(store, auth, request, name, fields, fields.get("csrf"))
        except LooplineError as error:
            return failure(request, error, as_json=False)
        return RedirectResponse(f"{UI}{done.next_path}?notice=" + quote(done.message), 303)

    @router.post(API + "/actions/{name}", summary="Perform a dashboard action (admin token)")
    async def api_action(request: Request, name: str) -> Response:
        """Promote, roll back, request a retrain or acknowledge an alert: ``POST /api/actions/promote`` with
        ``{"model", "version", "reason"}`` and ``Authorization: Bearer TOKEN``."""
        try:
            fields = await _json(request)
            done = _act(store, auth, request, name, fields, None, bearer_only=True)
        except LooplineError as error:
            return failure(request, error, as_json=True)
        return JSONResponse({"message": done.message, **done.result}, headers=SECURITY_HEADERS)

    return router


def _add_page(
    router: APIRouter,
    page: Page,
    html: Callable[..., HTMLResponse],
    failure: Callable[..., Response],
    view_for: Callable[[Request], View],
    store: Store,
) -> None:
    def data_for(request: Request) -> dict[str, Any]:
        return page.data(store, Params(request.path_params, request.query_params))

    def api(request: Request) -> Response:
        try:
            data = data_for(request)
        except LooplineError as error:
            return failure(request, error, as_json=True)
        encoded = json.dumps(finite(data), default=str, separators=(",", ":"))
        return Response(encoded, media_type="application/json", headers=SECURITY_HEADERS)

    def show(request: Request) -> Response:
        try:
            data = data_for(request)
            body = page.render(data, view_for(request))
        except LooplineError as error:
            return failure(request, error, as_json=False)
        return html(request, page.title_for(data), body, active=page.nav or "")

    name = page.path.strip("/").replace("/", "_").replace("{", "").replace("}", "") or "overview"
    router.add_api_route(
        f"{API}{page.path}", api, methods=["GET"], name=f"api_{name}", summary=f"{page.nav or name}: the page's data"
    )
    router.add_api_route(f"{UI}{page.path}", show, methods=["GET"], name=f"ui_{name}", include_in_schema=False)


def _act(
    store: Store,
    auth: Auth,
    request: Request,
    name: str,
    fields: dict[str, Any],
    csrf: Any,
    *,
    bearer_only: bool = False,
) -> Any:
    action = ACTIONS.get(name)
    if action is None:
        raise UIError(404, f"there is no action {name!r}.", hint=f"Actions: {', '.join(sorted(ACTIONS))}.")
    if bearer_only and not request.headers.get("authorization"):
        raise UIError(401, "send the admin token as `Authorization: Bearer TOKEN`.")
    auth.authorize(request, csrf if isinstance(csrf, str) else None)
    return action(store, fields, auth.actor)


async def _form(request: Request) -> dict[str, Any]:
    """An urlencoded form's fields (the dashboard's forms send nothing else); past the size limit, none."""
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > _MAX_FORM:
        return {}
    body = await request.body()
    if len(body) > _MAX_FORM:
        return {}
    parsed = parse_qs(body.decode("utf-8", "replace"), keep_blank_values=True, max_num_fields=20)
    return {key: values[0] for key, values in parsed.items()}


async def _json(request: Request) -> dict[str, Any]:
    body = await request.body()
    if len(body) > _MAX_FORM:
        raise UIError(413, f"the body exceeds {_MAX_FORM} bytes.")
    try:
        payload = json.loads(body or b"{}")
    except ValueError:
        raise UIError(
            400, "the body is not JSON.", hint='Send {"model": ..., ...} with Content-Type application/json.'
        ) from None
    if not isinstance(payload, dict):
        raise UIError(422, "the body must be a JSON object.")
    return payload


def _status(error: LooplineError) -> int:
    if isinstance(error, UIError):
        return error.status
    if isinstance(error, NotFoundError):
        return 404
    if isinstance(error, ConflictError):
        return 409
    return 400


def _user_box(view: View, auth: Auth) -> Markup:
    if view.admin:
        return Markup(
            f'<span class="badge good">admin</span><form method="post" action="{UI}/logout" class="inline">'
            "<button type=submit>sign out</button></form>"
        )
    if auth.token is None:
        return tag("span", "read-only", class_="badge neutral", title="no admin token configured")
    return link(f"{UI}/login", "sign in")


def add_dashboard(app: FastAPI, store: Store, token: str | None, token_name: str = "admin") -> None:
    """Add the dashboard's routes and static files to ``app`` (flat, as the service adds its own)."""
    router = ui_router(store, Auth(token, token_name))
    app.router.routes.extend(router.routes)
    app.mount(f"{UI}/static", StaticFiles(directory=STATIC), name="ui-static")


def mount_in_service(app: FastAPI, store: Store, settings: ServeSettings) -> None:
    """The prediction service's mount (``ServeSettings(mounts=["loopline.ui:mount_in_service"])``): the dashboard
    with the service's admin token."""
    add_dashboard(app, store, settings.token, settings.token_name)
    app.state.dashboard = f"{UI}/"  # the service's GET / leads there


def create_ui_app(
    store: Store, *, token: str | None = None, token_name: str = "admin", hosts: list[str] | None = None
) -> FastAPI:
    """The dashboard as an app of its own: ``/`` leads to ``/ui/``; ``hosts``: the Host headers accepted (None:
    any)."""
    from loopline import __version__
    from loopline.serve import HostCheck

    app = FastAPI(title="loopline dashboard", version=__version__, docs_url=None, redoc_url=None)
    app.add_api_route("/", lambda: RedirectResponse(f"{UI}/", 307), methods=["GET"], include_in_schema=False)
    add_dashboard(app, store, token, token_name)
    if hosts is not None:
        app.add_middleware(HostCheck, allowed=hosts)
    return app
