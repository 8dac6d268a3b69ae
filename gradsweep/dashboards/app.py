"""``gradsweep dashboard``: a read-only Dash app over the results database."""

from __future__ import annotations

import hmac
import logging

from dash import Dash
from flask import Response, request
from sqlalchemy import Engine
from werkzeug.exceptions import HTTPException

from gradsweep.dashboards.callbacks import register_callbacks
from gradsweep.dashboards.layout import shell

log = logging.getLogger(__name__)
TOKEN_COOKIE = "gradsweep_token"
LOCAL_HOSTS = ("127.0.0.1", "localhost", "::1")


def create_app(engine: Engine, token: str | None = None) -> Dash:
    """The app on an engine opened read-only; with ``token``, every request must carry it
    (``?token=…`` once, then a cookie)."""
    # update_title=None keeps the tab's title while callbacks run (Dash documents None;
    # its type hints say str)
    app = Dash(
        __name__,
        title="gradsweep",
        suppress_callback_exceptions=True,
        update_title=None,  # type: ignore[arg-type]
    )
    app.layout = shell()
    register_callbacks(app, engine)
    _refuse_malformed_updates(app)
    if token:
        _require_token(app, token)
    return app


def _refuse_malformed_updates(app: Dash) -> None:
    """A callback request Dash cannot read (missing keys, wrong shapes: never what the page
    itself sends) is the client's mistake: 400 and a line in the log, not a 500."""
    server = app.server

    @server.errorhandler(Exception)
    def _refuse(exc: Exception) -> Response | HTTPException:
        if isinstance(exc, HTTPException):
            return exc
        if request.path.endswith("/_dash-update-component"):
            log.warning("malformed callback request: %s: %s", type(exc).__name__, exc)
            return Response("malformed callback request", status=400, mimetype="text/plain")
        raise exc


def _require_token(app: Dash, token: str) -> None:
    server = app.server

    @server.before_request
    def _check() -> Response | None:
        given = request.args.get("token") or request.cookies.get(TOKEN_COOKIE) or ""
        if hmac.compare_digest(given, token):
            return None
        return Response(
            "<h1>403</h1><p>This dashboard needs ?token=…</p>", status=403, mimetype="text/html"
        )

    @server.after_request
    def _remember(response: Response) -> Response:
        if request.args.get("token") == token:
            response.set_cookie(TOKEN_COOKIE, token, httponly=True, samesite="Strict")
        return response


def exposure_warning(host: str, token: str | None) -> str | None:
    """What to tell a user who binds beyond this machine."""
    if host in LOCAL_HOSTS:
        return None
    if token:
        return f"the dashboard listens on {host}: reachable from other machines (token required)"
    return (
        f"the dashboard listens on {host} with no --token: anyone who can reach this "
        "machine can read your results"
    )
