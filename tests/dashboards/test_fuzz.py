"""Generated URLs, query strings and callback payloads against the real dashboard server:
never a 500, and the database is exactly as it was."""

from __future__ import annotations

import hashlib
import json
import tempfile
import threading
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import quote, urlencode

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import text
from werkzeug.serving import make_server

from gradsweep.dashboards.app import create_app
from gradsweep.storage.engine import open_engine
from tests.dashboards.study import build_three_task_study

TABLES = ("gs_studies", "gs_trials", "gs_epoch_metrics", "gs_weight_trace", "gs_comparisons")


def checksum(url: str) -> str:
    """Every row of every table, in a fixed order, hashed."""
    digest = hashlib.sha256()
    with open_engine(url, read_only=True).connect() as conn:
        for table in TABLES:
            for row in conn.execute(text(f"SELECT * FROM {table} ORDER BY 1, 2")):
                digest.update(repr(tuple(row)).encode())
    return digest.hexdigest()


@pytest.fixture(scope="module")
def server() -> Iterator[tuple[str, str, list[dict]]]:
    with tempfile.TemporaryDirectory() as folder:
        url = f"sqlite:///{Path(folder) / 'fuzz.db'}"
        build_three_task_study(url)
        app = create_app(open_engine(url, read_only=True))
        callbacks = [
            {"output": key, "inputs": value["inputs"], "state": value.get("state", [])}
            for key, value in app.callback_map.items()
        ]
        http = make_server("127.0.0.1", 0, app.server, threaded=True)
        thread = threading.Thread(target=http.serve_forever, daemon=True)
        thread.start()
        before = checksum(url)
        yield f"http://127.0.0.1:{http.server_port}", url, callbacks
        http.shutdown()
        assert checksum(url) == before  # nothing any request did changed the database


def fetch(request: urllib.request.Request | str) -> int:
    try:
        with urllib.request.urlopen(request, timeout=60) as response:
            response.read()
            return int(response.status)
    except urllib.error.HTTPError as exc:
        return int(exc.code)


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=30),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=12,
)
paths = st.one_of(
    st.text(max_size=40).map(lambda t: "/" + quote(t, safe="/")),
    st.text(max_size=30).map(lambda t: "/study/" + quote(t, safe="")),
    st.sampled_from(["/", "/study/three", "/study/", "/study/three/x", "/_dash-layout",
                     "/_dash-dependencies", "/_reload-hash", "/assets/x", "/%ZZ", "/study/%00"]),
)  # fmt: skip
SETTINGS = settings(
    max_examples=120,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)


@SETTINGS
@given(path=paths, query=st.dictionaries(st.text(max_size=10), st.text(max_size=20), max_size=3))
def test_any_url_gets_no_server_error(
    server: tuple[str, str, list[dict]], path: str, query: dict
) -> None:
    base, _, _ = server
    status = fetch(base + path + ("?" + urlencode(query) if query else ""))
    assert status < 500, (path, query, status)


@st.composite
def payloads(draw: st.DrawFn, callbacks: list[dict]) -> bytes:
    callback = draw(st.sampled_from(callbacks))

    def values(items: list[dict]) -> list[dict]:
        return [
            {
                "id": getattr(i["id"], "value", i["id"]),
                "property": i["property"],
                "value": draw(json_values),
            }
            for i in items
        ]

    body: dict = {
        "output": callback["output"],
        "outputs": draw(
            st.just([]) | st.lists(st.dictionaries(st.text(max_size=8), json_values), max_size=2)
        ),
        "inputs": values(callback["inputs"]),
        "state": values(callback["state"]),
        "changedPropIds": draw(st.lists(st.text(max_size=20), max_size=2)),
    }
    for key in draw(st.lists(st.sampled_from(sorted(body)), max_size=2)):  # malformed too
        body.pop(key, None)
    if draw(st.booleans()):
        body[draw(st.text(max_size=8))] = draw(json_values)
    return json.dumps(body).encode() if draw(st.integers(0, 9)) else draw(st.binary(max_size=50))


@SETTINGS
@given(data=st.data())
def test_any_callback_payload_gets_no_server_error(
    server: tuple[str, str, list[dict]], data: st.DataObject
) -> None:
    base, _, callbacks = server
    body = data.draw(payloads(callbacks))
    request = urllib.request.Request(
        base + "/_dash-update-component",
        data=body,
        headers={"Content-Type": "application/json"},
        method="POST",
    )
    status = fetch(request)
    assert status < 500, (body[:300], status)
