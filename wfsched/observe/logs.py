"""Structured logs that say which request, tenant, workflow and job they are about; a quiet console.

Every Ray process of the service writes JSON lines into the session's log folder
(`<session>/logs`): wfsched's own lines through Ray's `LoggingConfig(encoding="JSON")`, set at
`ray.init` for every worker of the job (`worker-*.err`, one file per process), and Serve's
lines (its proxy, controller and replicas, access lines included) through Serve's logging config
(`serve/*.log`). Each of wfsched's lines carries, where they apply:

- `request_id`: Serve's request id, the `X-Request-ID` of the response. Serve's proxy keeps a
  client's own id when it is a valid one (`RequestIdCheck`, installed in the proxy by
  `proxy_middlewares`) and makes one otherwise;
- `tenant` (the user id), `workflow_id`, `job_id` (wfsched's job: Ray's formatter also calls Ray's
  own job id `job_id`, so that one moves to `ray_job_id`).

Ray carries Serve's request context into no actor or task, so these fields travel explicitly: the
API replica passes the request id to the scheduler, which keeps it on the workflow and in every
`StartJob`; the lane passes the fields on to its segmentation tasks. Each process sets them with
`log_context` around the work, and `ContextFilter` writes them into every record it logs.

The console (`console`) shows readable lines only: no per-request access lines, no HTTP client
lines and no start-up chatter of Ray or Serve, unless the level is `debug`.
"""

from __future__ import annotations

import atexit
import contextlib
import logging
import logging.handlers
import os
import queue
import re
import sys
import threading
import time
import uuid
from collections.abc import Iterator, Mapping
from contextvars import ContextVar
from pathlib import Path
from types import MappingProxyType
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import ray
    from starlette.types import ASGIApp, Receive, Scope, Send

FIELDS = ("request_id", "tenant", "workflow_id", "job_id")
"""The correlation fields of a log line, outermost first."""
# How long a writer thread (`install(writer_thread=True)`) lets a burst's lines gather before it
# writes them together: a line reaches its file this much later at most.
WRITE_EVERY_S = 0.02

REQUEST_ID_HEADER = "x-request-id"
# A client's own request id is kept when it is 1–128 of these characters: UUIDs, ULIDs, hex and
# the ids of common proxies and tracers fit, and nothing that could break a log line or a shell.
_VALID_REQUEST_ID = re.compile(r"[A-Za-z0-9._:+=@/-]{1,128}")

# Serve's proxy calls this (in its own process) for the middlewares it runs before its own.
PROXY_CALLBACK = "wfsched.observe.logs:proxy_middlewares"
PROXY_CALLBACK_ENV = "RAY_SERVE_HTTP_PROXY_CALLBACK_IMPORT_PATH"
# Serve copies its replicas' and proxy's lines, as text, onto their stderr unless this is "0".
SERVE_STDERR_ENV = "RAY_SERVE_LOG_TO_STDERR"

CONSOLE_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
# Loggers whose lines below these levels are per-request or start-up chatter: the console shows
# them only at debug. (`ray.serve` has a level of its own, set when Serve is imported.)
CHATTY_LOGGERS = {
    "httpx": logging.WARNING,
    "httpcore": logging.WARNING,
    "ray": logging.WARNING,
    "ray.serve": logging.WARNING,
    # Says at every start that Ray's token authentication is on, as it is by default: nothing to do.
    "ray._private.authentication.authentication_token_setup": logging.ERROR,
}

_context: ContextVar[Mapping[str, str]] = ContextVar("wfsched_log_context", default=MappingProxyType({}))


# ---- the request id ---------------------------------------------------------------------------


def valid_request_id(value: str) -> bool:
    return _VALID_REQUEST_ID.fullmatch(value) is not None


def new_request_id() -> str:
    """An id in the shape Serve makes its own (a UUID4)."""
    return str(uuid.uuid4())


class RequestIdCheck:
    """ASGI middleware for Serve's proxy: at most one `X-Request-ID` reaches Serve, and a valid one.

    Serve keeps whatever id a client sends and echoes it. This runs before that: a valid id is
    kept (the first, if several came), anything else (spaces, too long, other characters) is
    replaced by a new one, not refused, so the id in logs and on a workflow is always a safe token.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] in ("http", "websocket"):
            scope = {**scope, "headers": checked_headers(scope["headers"])}
        await self.app(scope, receive, send)


def checked_headers(headers: list[tuple[bytes, bytes]]) -> list[tuple[bytes, bytes]]:
    """The headers with one valid request id, or none if none came (Serve then makes one)."""
    ids = [value for name, value in headers if name.lower() == REQUEST_ID_HEADER.encode()]
    first = ids[0].decode("latin-1") if ids else ""
    if not ids or (len(ids) == 1 and valid_request_id(first)):
        return headers
    kept = first if valid_request_id(first) else new_request_id()
    others = [(name, value) for name, value in headers if name.lower() != REQUEST_ID_HEADER.encode()]
    return [*others, (REQUEST_ID_HEADER.encode(), kept.encode())]


def proxy_middlewares() -> list[Any]:
    """For Serve's proxy (`RAY_SERVE_HTTP_PROXY_CALLBACK_IMPORT_PATH`): the request id check."""
    from starlette.middleware import Middleware

    return [Middleware(RequestIdCheck)]


class RequestLogContext:
    """ASGI middleware for the app: the request's id, as Serve's proxy set it, in the log context."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        ids = [value for name, value in scope["headers"] if name == REQUEST_ID_HEADER.encode()]
        with log_context(request_id=ids[0].decode("latin-1") if ids else None):
            await self.app(scope, receive, send)


# ---- the context of a log line ----------------------------------------------------------------


def fields(**values: str | None) -> dict[str, str]:
    """The given correlation fields that have a value."""
    unknown = set(values) - set(FIELDS)
    if unknown:
        raise ValueError(f"not a log field: {', '.join(sorted(unknown))} (the fields are {', '.join(FIELDS)})")
    return {name: value for name, value in values.items() if value is not None}


@contextlib.contextmanager
def log_context(**values: str | None) -> Iterator[None]:
    """Lines logged inside carry these fields (and the ones set around it); None leaves one as it is."""
    token = _context.set(MappingProxyType({**_context.get(), **fields(**values)}))
    try:
        yield
    finally:
        _context.reset(token)


def current() -> dict[str, str]:
    """The fields set here now."""
    return dict(_context.get())


def request_id() -> str | None:
    """The id of the request being handled here, if any."""
    return _context.get().get("request_id")


def task_name(function: str, values: Mapping[str, str]) -> str:
    """A Ray task's name for the dashboard: `segment_tiles lab-a/3f2a9c1e/cells`."""
    parts = [values.get("tenant"), (values.get("workflow_id") or "")[:8] or None, values.get("job_id")]
    named = "/".join(part for part in parts if part)
    return f"{function} {named}" if named else function


class ContextFilter(logging.Filter):
    """Writes the context's fields into each record, and moves Ray's job id to `ray_job_id`.

    Ray's own filter (on the handlers Ray's `LoggingConfig` adds) sets `job_id` to Ray's job id on
    every record; this one runs after it, on the same handlers (`install`).
    """

    def filter(self, record: logging.LogRecord) -> bool:
        ours = _context.get()
        job_id = record.__dict__.get("job_id")
        # A record goes through this once per handler: a job id that is not ours is Ray's, set anew.
        if job_id is not None and job_id != ours.get("job_id"):
            record.__dict__["ray_job_id"] = record.__dict__.pop("job_id")
        record.__dict__.update(ours)
        return True


_FILTER = ContextFilter()


def install(writer_thread: bool = False) -> None:
    """Add the context's fields to what this process logs: each Ray worker calls this once it
    starts (again changes nothing).

    `writer_thread` is for a process that logs from many threads at once, a lane host's jobs: a
    line was formatted and written under its handler's lock, and a write lets go of the GIL, so
    threads queued up behind one another (tens of ms per job start under load). With it, the
    logging thread only filters its record (the fields and Ray's task ids are that thread's), puts
    its arguments into its message and queues it, taking no lock; one thread per handler formats
    and writes the lines, in their order.
    """
    root = logging.getLogger()
    for index, handler in enumerate(root.handlers):
        if isinstance(handler, _QueuedHandler):
            continue
        if _FILTER not in handler.filters:
            handler.addFilter(_FILTER)
        if writer_thread and isinstance(handler, logging.StreamHandler):
            root.handlers[index] = _QueuedHandler(handler)


class _QueuedHandler(logging.handlers.QueueHandler):
    """`handler`'s level and filters in the logging thread; `handler` formats and writes in a thread of its own.

    Records are queued as they are, not formatted first (`QueueHandler.prepare`): the formatters
    here read only what the record holds once filtered, and the arguments of wfsched's lines are
    values that do not change after the call.

    The writer takes what gathered within WRITE_EVERY_S of a first line and writes it in one go:
    woken for each line, it took the GIL twice and made a write for each of a burst's hundreds of
    lines, about half of what a lane host spent to start and end a job.
    """

    def __init__(self, handler: logging.StreamHandler) -> None:  # type: ignore[type-arg]
        lines: queue.SimpleQueue[logging.LogRecord | None] = queue.SimpleQueue()
        super().__init__(lines)
        self.lines = lines
        self.setLevel(handler.level)
        self.filters, handler.filters = handler.filters, []
        self.target = handler
        self._writer = threading.Thread(target=self._write_forever, name="log-writer", daemon=True)
        self._writer.start()
        atexit.register(self.close)  # the lines still queued are written before the end

    def handle(self, record: logging.LogRecord) -> bool:  # type: ignore[override]
        """Filter `record` here and queue it, without the handler's lock: the queue is thread-safe."""
        if not self.filter(record):
            return False
        record.msg, record.args = record.getMessage(), None
        self.queue.put_nowait(record)
        return True

    def close(self) -> None:
        """Write what is queued, then stop the writer thread; again does nothing."""
        if self._writer.is_alive():
            self.lines.put_nowait(None)
            self._writer.join()
        super().close()

    def _write_forever(self) -> None:
        """Write the lines in their order, those of a burst together, until `close` queues None."""
        while True:
            records = [self.lines.get()]
            time.sleep(WRITE_EVERY_S)  # the rest of a burst gathers meanwhile
            with contextlib.suppress(queue.Empty):
                while records[-1] is not None:
                    records.append(self.lines.get_nowait())
            self._write([record for record in records if record is not None])
            if records[-1] is None:
                return

    def _write(self, records: list[logging.LogRecord]) -> None:
        handler = self.target
        if type(handler).emit is not logging.StreamHandler.emit:  # writes its own way: one at a time
            for record in records:
                handler.handle(record)
            return
        text = []
        for record in records:
            try:
                text.append(handler.format(record) + handler.terminator)
            except Exception:
                handler.handleError(record)
        if not text:
            return
        with handler.lock:  # type: ignore[union-attr]
            try:
                handler.stream.write("".join(text))
                handler.flush()
            except Exception:
                handler.handleError(records[-1])


# ---- Ray and Serve ----------------------------------------------------------------------------


def ray_job_config(level: str) -> ray.job_config.JobConfig:
    """For `ray.init(job_config=...)`: every worker of the job logs JSON lines from `level` on.

    This is what `ray.init(logging_config=...)` sets for the workers, without what it also does
    to the calling process: there it would turn the console's own lines into JSON.
    """
    import ray

    job_config = ray.job_config.JobConfig()
    job_config.set_py_logging_config(
        ray.LoggingConfig(encoding="JSON", log_level=level.upper(), additional_log_standard_attrs=["name"])
    )
    return job_config


def serve_logging_config(level: str) -> dict[str, Any]:
    """Serve's logging config: JSON lines at `level`, access lines included (in the files only)."""
    return {"encoding": "JSON", "log_level": level.upper(), "enable_access_log": True}


def prepare_ray_environment(level: str) -> None:
    """Before this process starts Ray: the proxy's request id check, and Serve's copies on stderr.

    Ray's processes inherit this environment. A variable already set is left as it is. Serve's
    text copies of its lines on stderr go only where the console shows them (debug): elsewhere
    each process's stderr holds JSON lines alone.
    """
    os.environ.setdefault(PROXY_CALLBACK_ENV, PROXY_CALLBACK)
    os.environ.setdefault(SERVE_STDERR_ENV, "1" if level == "debug" else "0")


def session_logs_dir() -> Path:
    """The log folder of the Ray session this process is connected to."""
    import ray

    context = ray.get_runtime_context()
    return Path(context.get_temp_dir()) / context.get_session_name() / "logs"


# ---- the console ------------------------------------------------------------------------------


class _ConsoleHandler(logging.StreamHandler):  # type: ignore[type-arg]
    """The one handler `console` puts on the root logger (a second call replaces it).

    It writes to `sys.stderr` as it is at each line, as `logging.lastResort` does: a stream
    swapped since (a test's capture, a redirection) gets the lines, a closed one is never used.
    """

    def __init__(self) -> None:
        super().__init__(sys.stderr)

    @property  # type: ignore[override]
    def stream(self) -> Any:
        return sys.stderr

    @stream.setter
    def stream(self, _: Any) -> None:
        pass


def console(level: str = "info") -> None:
    """This process's terminal: readable lines on stderr at `level`; Ray's, Serve's and the HTTP
    client's INFO lines only at `debug`. Call it after Serve is imported (which sets its logger)."""
    debug = level == "debug"
    root = logging.getLogger()
    for handler in [h for h in root.handlers if isinstance(h, _ConsoleHandler)]:
        root.removeHandler(handler)
    handler = _ConsoleHandler()
    handler.setFormatter(logging.Formatter(CONSOLE_FORMAT))
    root.addHandler(handler)
    root.setLevel(level.upper())
    for name, quiet_level in CHATTY_LOGGERS.items():
        logging.getLogger(name).setLevel(logging.DEBUG if debug else quiet_level)
