"""``gradsweep dashboard``: a read-only Dash app over the results database."""

from __future__ import annotations

import hmac
import logging
import re
from urllib.parse import quote, quote_plus

from dash import Dash
from dash.exceptions import DependencyException
from flask import Response, request
from sqlalchemy import Engine
from werkzeug.exceptions import HTTPException

from gradsweep.dashboards.callbacks import register_callbacks
from gradsweep.dashboards.layout import shell

log = logging.getLogger(__name__)
TOKEN_COOKIE = "gradsweep_token"
LOCAL_HOSTS = ("127.0.0.1", "localhost", "::1")
# the access log's loggers (werkzeug's development server, which `app.run` uses)
ACCESS_LOGGERS = ("werkzeug",)
REDACTED = "[redacted]"
# a token this long is also taken out wherever it appears (a shorter one would take out
# ordinary words of the log with it; its token=… parameter is taken out all the same)
MIN_TOKEN_SEARCHED = 6
# a token=… parameter of a query string, as a request line in the log holds it
TOKEN_PARAMETER = re.compile(r"(?i)((?:[?&;]|%3F|%26)token=)[^&;#\s\"\x1b]*")


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
        if isinstance(exc, DependencyException):  # /_dash-component-suites/ of no asset
            return Response("not found", status=404, mimetype="text/plain")
        if request.path.endswith("/_dash-update-component"):
            log.warning("malformed callback request: %s: %s", type(exc).__name__, exc)
            return Response("malformed callback request", status=400, mimetype="text/plain")
        raise exc


class RedactTokens(logging.Filter):
    """Takes the dashboard's tokens out of log records: werkzeug logs every request line,
    ``GET /?token=s3cret``, and an access log is read by more people than the token is
    meant for. Any ``token=`` parameter's value, and each token (of ``MIN_TOKEN_SEARCHED``
    characters or more) wherever it appears, URL-encoded too, becomes ``[redacted]``."""

    def __init__(self) -> None:
        super().__init__()
        self.tokens: set[str] = set()

    def redact(self, text: str) -> str:
        text = TOKEN_PARAMETER.sub(lambda m: m.group(1) + REDACTED, text)
        searched = [t for t in self.tokens if len(t) >= MIN_TOKEN_SEARCHED]
        for token in sorted(searched, key=len, reverse=True):
            for form in {token, quote(token, safe=""), quote_plus(token)}:
                text = text.replace(form, REDACTED)
        return text

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        redacted = self.redact(message)
        if redacted != message:
            record.msg, record.args = redacted, None
        return True


def token_filter() -> RedactTokens:
    """The one filter on the access loggers (installed once a process, however many apps
    are created)."""
    for name in ACCESS_LOGGERS:
        for found in logging.getLogger(name).filters:
            if isinstance(found, RedactTokens):
                return found
    installed = RedactTokens()
    for name in ACCESS_LOGGERS:
        logging.getLogger(name).addFilter(installed)
    return installed


def _require_token(app: Dash, token: str) -> None:
    server = app.server
    token_filter().tokens.add(token)

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
