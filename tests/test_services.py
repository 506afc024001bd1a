"""Routes reach the gateway through one typed ``Services`` object, and block only in the thread pool.

Issue 11: nine untyped ``app.state`` attributes were read in 62 places and 64
hand-written ``asyncio.to_thread`` wrappers carried the database work. Now
the lifespan stores one frozen ``Services`` as ``app.state.services``, routes
take it through ``get_services``, and blocking routes are plain ``def``
(FastAPI runs them in its thread pool). These tests read the source (``ast``)
and the running application's routes, so a new module or route cannot slip
back into either habit. Fast: no stack needed.
"""

from __future__ import annotations

import ast
import dataclasses
import inspect
from pathlib import Path

import pytest
from fastapi.routing import APIRoute, APIWebSocketRoute, iter_route_contexts

from gui_recorder.gateway.services import Services, get_services
from test_gateway_api import gw, template  # noqa: F401 (fixtures)

GATEWAY = Path(__file__).resolve().parent.parent / "gui_recorder" / "gateway"
# Where app.state may be touched: the module that reads it for every route, and the one that writes it.
STATE_ALLOWED = {"services.py", "app.py"}

# HTTP routes that stay `async def`, and why. Every other HTTP route is plain `def`.
ASYNC_ROUTES = {
    "health": "bounds each probe in time with asyncio.wait_for and runs them at once",
    "health_details": "the same probes as health",
    "me": "no I/O: the user comes from the dependency",
    "watch_token": "no I/O; reads the relays, which belong to the event loop",
    "terminate": "Relay.terminate acts on the relay's asyncio tasks",
    "docs": "no I/O: a constant page",
    "disable_user": "ends the account's relays, which belong to the event loop",
    "delete_user": "ends the account's relays, which belong to the event loop",
    "test_connection": "awaits guacd's handshake and the target's first answer",
}
# Dependencies that stay `async def`, and why: a blocking one would stall the event loop.
ASYNC_DEPENDENCIES = {
    "get_services": "no I/O: an attribute read (a def dependency costs a thread hop per request)",
    "require_capability.<locals>.check": "no I/O: compares the signed-in user's role with the table",
    "signed_in": "no I/O",
    "public.<locals>.no_sign_in": "no I/O",
    "session_access.<locals>.access": "database work in a thread; the view window folds reads with asyncio "
                                      "futures",
    "search_access": "its audit write in a thread, folded like access",
    "metrics_guard": "no I/O: compares a header with a setting",
}


def _state_reads(path: Path) -> list[str]:
    """``x.app.state`` / ``app.state`` references and ``<anything>.state.<attr>`` reads in one module."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if not isinstance(node, ast.Attribute):
            continue
        value = node.value
        on_app = node.attr == "state" and (
            (isinstance(value, ast.Name) and value.id == "app") or (isinstance(value, ast.Attribute)
                                                                     and value.attr == "app"))
        through_state = isinstance(value, ast.Attribute) and value.attr == "state"
        if on_app or through_state:
            found.append(f"{path.name}:{node.lineno}: {ast.unparse(node)}")
    return found


def test_no_gateway_module_reads_app_state():
    modules = sorted(GATEWAY.glob("*.py"))
    assert len(modules) > 20, "the gateway package was not found"
    reads = [r for path in modules if path.name not in STATE_ALLOWED for r in _state_reads(path)]
    assert not reads, "take `services: ServicesDep` instead of reading app.state:\n" + "\n".join(reads)


def test_the_ast_check_sees_the_forms_it_forbids(tmp_path):
    # The check above passes on an empty net too: prove it catches each form that was in the code.
    sample = tmp_path / "sample.py"
    sample.write_text("def f(request, websocket, app):\n"
                      "    a = request.app.state.db\n"
                      "    b = websocket.app.state.recordings\n"
                      "    c = hasattr(app.state, 'text_timeline')\n"
                      "    state = request.app.state\n"
                      "    d = relay.state is None\n")
    flagged = {int(r.split(":")[1]) for r in _state_reads(sample)}
    assert flagged == {2, 3, 4, 5}, "each read of app.state is found, and a relay's own state is not"


def _app_routes(app):
    for rc in iter_route_contexts(app.routes):
        if isinstance(rc.original_route, (APIRoute, APIWebSocketRoute)):
            yield rc


def _dependency_calls(dependant):
    for dep in dependant.dependencies:
        yield dep.call
        yield from _dependency_calls(dep)


async def test_blocking_routes_are_plain_def_and_every_async_one_says_why(gw):  # noqa: F811
    async_routes, def_routes, async_deps = set(), set(), set()
    for rc in _app_routes(gw.app):
        endpoint = rc.original_route.endpoint
        if isinstance(rc.original_route, APIRoute):
            (async_routes if inspect.iscoroutinefunction(endpoint) else def_routes).add(endpoint.__name__)
        async_deps |= {c.__qualname__ for c in _dependency_calls(rc.dependant) if inspect.iscoroutinefunction(c)}
    assert async_routes == set(ASYNC_ROUTES), (
        "an async HTTP route must await something (else make it def and drop its to_thread): "
        f"unexpected {sorted(async_routes - set(ASYNC_ROUTES))}, gone {sorted(set(ASYNC_ROUTES) - async_routes)}")
    assert len(def_routes) >= 25, sorted(def_routes)
    assert async_deps == set(ASYNC_DEPENDENCIES), (
        f"unexpected async dependencies {sorted(async_deps - set(ASYNC_DEPENDENCIES))}, "
        f"gone {sorted(set(ASYNC_DEPENDENCIES) - async_deps)}")


def test_plain_def_routes_hand_no_work_to_threads_themselves():
    # In a def route, asyncio.to_thread cannot even be awaited: any left is in an async function.
    wrapped = []
    for path in sorted(GATEWAY.glob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.FunctionDef):
                wrapped += [f"{path.name}:{n.lineno}" for n in ast.walk(node)
                            if isinstance(n, ast.Attribute) and n.attr == "to_thread"
                            and not _inside_async(node, n)]
    assert not wrapped, wrapped


def _inside_async(outer: ast.FunctionDef, target: ast.AST) -> bool:
    for node in ast.walk(outer):
        if isinstance(node, ast.AsyncFunctionDef) and any(n is target for n in ast.walk(node)):
            return True
    return False


async def test_app_state_holds_one_frozen_services_object_that_routes_receive(gw):  # noqa: F811
    app = gw.app
    assert set(vars(app.state)["_state"]) == {"services"}, "app.state holds the services and nothing else"
    services = app.state.services
    assert isinstance(services, Services)
    with pytest.raises(dataclasses.FrozenInstanceError):
        services.db = None  # type: ignore[misc]
    # Every route that needs a service declares the one dependency (none reads it any other way).
    using = [rc.path for rc in _app_routes(app) if get_services in set(_dependency_calls(rc.dependant))]
    assert len(using) >= 30 and "/api/tunnel" in using and "/api/watch" in using, using
    # The services are live: what a route writes is what they hold.
    admin = await gw.api("admin")
    assert (await admin.get("/api/sessions")).status_code == 200
    assert services.db is gw.db and services.spool_root == services.recordings.spool.root
    events = (await admin.get("/api/audit", params={"action": "auth.login"})).json()
    assert [e["username"] for e in events] == ["admin"]
    assert services.text_timeline("no-such-session") == []
