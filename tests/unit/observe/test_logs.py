"""Log lines carry their request, tenant, workflow and job; request ids are checked; the console is quiet."""

from __future__ import annotations

import asyncio
import contextlib
import io
import json
import logging
import threading
from collections.abc import Iterator
from typing import Any

import pytest
from ray._common.filters import CoreContextFilter
from ray._common.formatters import JSONFormatter

from wfsched.observe import logs

UUID_LENGTH = 36


@pytest.mark.parametrize(
    "value",
    ["3f2a9c1e-0b7d-4c1e-9d1a-2b6f0c9e8a71", "abc", "Root=1-5759e988-bd862e3fe1be46a9", "a:b/c+d@e.f_g", "x" * 128],
)
def test_a_plain_token_of_at_most_128_characters_is_a_valid_request_id(value: str) -> None:
    assert logs.valid_request_id(value)


@pytest.mark.parametrize("value", ["", "hello world", "x" * 129, "naïve", 'a"b', "a\nb", "a;b", "<script>"])
def test_anything_else_is_not(value: str) -> None:
    assert not logs.valid_request_id(value)


def headers(*ids: str) -> list[tuple[bytes, bytes]]:
    return [(b"host", b"x"), *((b"x-request-id", value.encode("latin-1")) for value in ids), (b"accept", b"*/*")]


def ids_in(checked: list[tuple[bytes, bytes]]) -> list[str]:
    return [value.decode() for name, value in checked if name == b"x-request-id"]


def test_the_proxy_check_keeps_a_valid_id_and_replaces_an_invalid_one_instead_of_refusing() -> None:
    assert logs.checked_headers(headers("req-1")) == headers("req-1")
    (replaced,) = ids_in(logs.checked_headers(headers("hello world")))
    assert logs.valid_request_id(replaced) and len(replaced) == UUID_LENGTH
    (too_long,) = ids_in(logs.checked_headers(headers("x" * 500)))
    assert len(too_long) == UUID_LENGTH
    assert ids_in(logs.checked_headers(headers("first", "second"))) == ["first"]  # one id goes on, never two
    assert logs.checked_headers(headers()) == headers()  # none: Serve makes one
    assert (b"host", b"x") in logs.checked_headers(headers("bad id"))  # the other headers stay


def run_asgi(middleware: Any, scope: dict[str, Any]) -> dict[str, Any]:
    """Call `middleware` around an app that records the scope and the log context it saw."""
    seen: dict[str, Any] = {}

    async def app(scope: Any, receive: Any, send: Any) -> None:
        seen["scope"], seen["context"] = scope, logs.current()

    async def nothing() -> dict[str, Any]:
        return {}

    async def ignore(message: Any) -> None:
        pass

    asyncio.run(middleware(app)(scope, nothing, ignore))
    return seen


def test_the_proxy_middleware_and_the_apps_log_context_middleware() -> None:
    seen = run_asgi(logs.RequestIdCheck, {"type": "http", "headers": headers("a b")})
    (checked,) = ids_in(seen["scope"]["headers"])
    assert logs.valid_request_id(checked)
    assert run_asgi(logs.RequestIdCheck, {"type": "lifespan"})["scope"] == {"type": "lifespan"}
    seen = run_asgi(logs.RequestLogContext, {"type": "http", "headers": headers("req-7")})
    assert seen["context"] == {"request_id": "req-7"}
    assert logs.current() == {}  # only while the request is handled


def test_contexts_nest_and_end() -> None:
    with logs.log_context(request_id="r", tenant="lab-a"):
        with logs.log_context(workflow_id="w", job_id=None):
            assert logs.current() == {"request_id": "r", "tenant": "lab-a", "workflow_id": "w"}
        assert logs.request_id() == "r" and "workflow_id" not in logs.current()
    assert logs.current() == {} and logs.request_id() is None
    with pytest.raises(ValueError, match="not a log field: user"):
        logs.fields(user="x")


class RayJobId(logging.Filter):
    """What Ray's CoreContextFilter does in a worker: it names Ray's own job id `job_id`."""

    def filter(self, record: logging.LogRecord) -> bool:
        record.job_id = "01000000"
        return True


@pytest.fixture
def json_lines() -> Iterator[tuple[logging.Logger, io.StringIO]]:
    """A logger writing through a handler as Ray's JSON LoggingConfig makes it, plus `install`."""
    out = io.StringIO()
    handler = logging.StreamHandler(out)
    handler.setFormatter(JSONFormatter())
    handler.addFilter(CoreContextFilter())
    handler.addFilter(RayJobId())
    root = logging.getLogger()
    others = [logging.StreamHandler(io.StringIO()) for _ in range(2)]
    for other in others:  # more handlers with the filter (as under pytest): a record goes through it thrice
        root.addHandler(other)
    root.addHandler(handler)
    logs.install()
    logs.install()  # once per handler, however often a process calls it
    assert handler.filters.count(logs._FILTER) == 1
    logger = logging.getLogger("wfsched.test")
    logger.setLevel(logging.INFO)
    try:
        yield logger, out
    finally:
        for added in (*others, handler):
            root.removeHandler(added)


def test_a_json_line_carries_the_fields_and_ray_keeps_its_job_id_apart(
    json_lines: tuple[logging.Logger, io.StringIO],
) -> None:
    logger, out = json_lines
    with logs.log_context(request_id="req-1", tenant="lab-a", workflow_id="w1", job_id="cells"):
        logger.info("segmented %d tiles", 4)
    logger.info("no context")
    inside, outside = (json.loads(line) for line in out.getvalue().splitlines())
    assert inside["message"] == "segmented 4 tiles"
    assert {key: inside[key] for key in logs.FIELDS} == {
        "request_id": "req-1",
        "tenant": "lab-a",
        "workflow_id": "w1",
        "job_id": "cells",
    }
    assert inside["ray_job_id"] == outside["ray_job_id"] == "01000000"
    assert not set(logs.FIELDS) & set(outside)


@contextlib.contextmanager
def writer_thread_over(handler: logging.Handler) -> Iterator[logging.Logger]:
    """The root logger with `handler` alone, put behind one writer thread (installed twice: once,
    however often a process calls it); on leaving, what is still queued is written."""
    root = logging.getLogger()
    saved, root.handlers = root.handlers, [handler]  # pytest's own handlers stay as they are
    logs.install(writer_thread=True)
    logs.install(writer_thread=True)
    queued = [h for h in root.handlers if isinstance(h, logs._QueuedHandler)]
    try:
        assert len(queued) == 1
        yield root
    finally:
        for added in queued:
            added.close()
        root.handlers = saved


def test_with_a_writer_thread_each_thread_s_lines_keep_their_fields_and_order() -> None:
    """A lane host's jobs log from many threads; one writer thread writes what they queued."""
    out = io.StringIO()
    handler = logging.StreamHandler(out)
    handler.setFormatter(JSONFormatter())
    handler.addFilter(RayJobId())
    logger = logging.getLogger("wfsched.test")
    logger.setLevel(logging.INFO)

    def job(name: str) -> None:
        with logs.log_context(tenant="lab-a", job_id=name):
            for step in range(50):
                logger.info("%s step %d", name, step)
            tiles = [1, 2]
            logger.info("%s tiles %s", name, tiles)
            tiles.append(3)  # after the call: the line says what was true when it was logged

    with writer_thread_over(handler) as root:
        assert handler not in root.handlers
        threads = [threading.Thread(target=job, args=(f"job{n}",)) for n in range(8)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    lines = [json.loads(line) for line in out.getvalue().splitlines()]
    assert len(lines) == 8 * 51
    for n in range(8):
        mine = [line for line in lines if line["job_id"] == f"job{n}"]
        steps = [f"job{n} step {step}" for step in range(50)]
        assert [line["message"] for line in mine] == [*steps, f"job{n} tiles [1, 2]"]
        assert all(line["tenant"] == "lab-a" and line["ray_job_id"] == "01000000" for line in mine)


class CountedWrites(io.StringIO):
    def __init__(self) -> None:
        super().__init__()
        self.writes = 0

    def write(self, text: str) -> int:
        self.writes += 1
        return super().write(text)


def test_a_writer_thread_writes_a_burst_of_lines_together() -> None:
    """Hundreds of lines logged at once reach the stream in a few writes, all of them, in order."""
    out = CountedWrites()
    logger = logging.getLogger("wfsched.test")
    logger.setLevel(logging.INFO)
    with writer_thread_over(logging.StreamHandler(out)):
        for n in range(300):
            logger.info("line %d", n)
    assert out.getvalue().splitlines() == [f"line {n}" for n in range(300)]
    assert out.writes < 30


def test_a_task_is_named_for_its_tenant_workflow_and_job() -> None:
    fields = {"tenant": "lab-a", "workflow_id": "3f2a9c1e0b7d4c1e", "job_id": "cells", "request_id": "r"}
    assert logs.task_name("segment_tiles", fields) == "segment_tiles lab-a/3f2a9c1e/cells"
    assert logs.task_name("segment_tiles", {}) == "segment_tiles"


@pytest.fixture
def console_levels() -> Iterator[None]:
    """Put back what `console` changes: the root's handlers and the levels it sets."""
    names = ["", *logs.CHATTY_LOGGERS]
    levels = {name: logging.getLogger(name).level for name in names}
    handlers = logging.getLogger().handlers[:]
    yield
    for name, level in levels.items():
        logging.getLogger(name).setLevel(level)
    logging.getLogger().handlers[:] = handlers


@pytest.mark.usefixtures("console_levels")
def test_the_console_hides_client_and_ray_chatter_unless_at_debug(capfd: pytest.CaptureFixture[str]) -> None:
    logs.console("info")
    logs.console("info")  # a second call replaces its handler: no line twice
    logging.getLogger("httpx").info('HTTP Request: GET http://x/api "HTTP/1.1 200 OK"')
    logging.getLogger("ray.serve").info("GET /api/workflows 200 3.1ms")
    logging.getLogger("wfsched.api.server").info("ours")
    err = capfd.readouterr().err
    assert "HTTP Request" not in err and "GET /api" not in err
    assert err.count("ours") == 1
    assert logging.getLogger("ray").getEffectiveLevel() == logging.WARNING  # Ray's warnings still show
    logs.console("debug")
    logging.getLogger("httpx").info('HTTP Request: GET http://x/api "HTTP/1.1 200 OK"')
    assert "HTTP Request" in capfd.readouterr().err
