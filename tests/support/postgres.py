"""A real PostgreSQL server for tests: Debian's binaries (scripts/install-postgres.sh), a cluster of
its own in a temporary folder, reached on a Unix socket there (no TCP port to race for), run as an
unprivileged user and stopped by its PID when the session ends.

    with running_postgres() as server:
        url = server.new_database()   # an empty database of its own for each test
"""

from __future__ import annotations

import contextlib
import itertools
import os
import pwd
import shutil
import signal
import subprocess
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psycopg
from psycopg.conninfo import conninfo_to_dict

from wfsched.config import PostgresUrl

# Debian installs each major version's server here (postgresql-common puts only clients on PATH).
BINARIES = "/usr/lib/postgresql/*/bin"
INSTALL = "run scripts/install-postgres.sh as root (`make test` and `make test-fast` do)"
# initdb refuses to run as root; as root, the cluster runs as the account Debian's package makes.
SERVER_USER = "postgres"
# The superuser role initdb makes; every test connects as it (trust authentication, socket only).
ROLE = "wfsched"
# An empty cluster accepts connections in well under a second; a loaded 2-core machine may take several.
READY_TIMEOUT_S = 60.0
# pg_terminate_backend waits this long for the connection to be gone.
TERMINATE_TIMEOUT_MS = 5000
# A test's data lives minutes: durability costs time and buys nothing here.
TEST_SETTINGS = {
    "listen_addresses": "",
    "fsync": "off",
    "synchronous_commit": "off",
    "full_page_writes": "off",
    # The store tests open many stores; each e2e service a few connections per actor.
    "max_connections": "300",
}


@dataclass
class PostgresServer:
    socket_dir: Path
    pid: int
    _numbers: Iterator[int] = field(default_factory=itertools.count)

    def url(self, database: str = "postgres") -> PostgresUrl:
        return PostgresUrl(f"postgresql://{ROLE}@/{database}?host={self.socket_dir}")

    def new_database(self) -> PostgresUrl:
        """A new, empty database on this server: its URL."""
        name = f"test_{next(self._numbers)}"
        with psycopg.connect(self.url(), autocommit=True) as admin:
            admin.execute(f"CREATE DATABASE {name}")
        return self.url(name)

    def drop_connections(self, url: PostgresUrl) -> None:
        """End every connection to the database at `url`, as a restart of the server would."""
        with psycopg.connect(self.url(), autocommit=True) as admin:
            admin.execute(
                "SELECT pg_terminate_backend(pid, %s) FROM pg_stat_activity"
                " WHERE datname = %s AND pid <> pg_backend_pid()",
                (TERMINATE_TIMEOUT_MS, conninfo_to_dict(url)["dbname"]),
            )


def server_binaries() -> Path:
    """The newest installed major version's bin folder; FileNotFoundError that says what to do."""
    found = sorted(
        (path.parent for path in Path("/").glob(BINARIES.lstrip("/") + "/postgres")),
        key=lambda path: int(path.parent.name) if path.parent.name.isdigit() else 0,
    )
    if not found:
        raise FileNotFoundError(f"PostgreSQL's server binaries are missing ({BINARIES}): {INSTALL}")
    return found[-1]


@contextlib.contextmanager
def running_postgres() -> Iterator[PostgresServer]:
    """A fresh cluster, serving until the block ends; its folder is removed after."""
    binaries = server_binaries()
    as_user = _unprivileged_user()
    folder = Path(tempfile.mkdtemp(prefix="wfsched-pg-"))
    try:
        if as_user:
            os.chown(folder, as_user["user"], as_user["group"])
        data, log_path = folder / "data", folder / "server.log"
        initdb = [str(binaries / "initdb"), "-D", str(data), "-U", ROLE, "--auth=trust", "-E", "UTF8"]
        _run([*initdb, "--locale=C", "--no-sync"], as_user, log_path)
        options = [arg for name, value in TEST_SETTINGS.items() for arg in ("-c", f"{name}={value}")]
        command = [str(binaries / "postgres"), "-D", str(data), "-k", str(folder), *options]
        with log_path.open("ab") as log:
            process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, **as_user)
        try:
            server = PostgresServer(folder, process.pid)
            _wait_ready(server, process, log_path)
            yield server
        finally:
            process.send_signal(signal.SIGINT)  # "fast" shutdown: ends the sessions left open
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def _unprivileged_user() -> dict[str, Any]:
    """Popen's arguments that run the server as SERVER_USER when this is root; else none."""
    if os.geteuid() != 0:
        return {}
    try:
        account = pwd.getpwnam(SERVER_USER)
    except KeyError:
        raise FileNotFoundError(f"there is no {SERVER_USER!r} account to run PostgreSQL as: {INSTALL}") from None
    return {"user": account.pw_uid, "group": account.pw_gid, "extra_groups": []}


def _run(command: list[str], as_user: dict[str, Any], log_path: Path) -> None:
    done = subprocess.run(command, capture_output=True, text=True, check=False, **as_user)
    log_path.write_text(done.stdout + done.stderr)
    if done.returncode != 0:
        raise RuntimeError(f"{Path(command[0]).name} failed ({done.returncode}): {(done.stdout + done.stderr)[-2000:]}")


def _wait_ready(server: PostgresServer, process: subprocess.Popen[bytes], log_path: Path) -> None:
    deadline = time.monotonic() + READY_TIMEOUT_S
    while True:
        if process.poll() is not None:
            raise RuntimeError(f"postgres exited with {process.returncode}: {log_path.read_text()[-2000:]}")
        with contextlib.suppress(psycopg.OperationalError), psycopg.connect(server.url(), connect_timeout=2):
            return
        if time.monotonic() > deadline:
            raise TimeoutError(f"postgres not ready after {READY_TIMEOUT_S:.0f} s: {log_path.read_text()[-2000:]}")
        time.sleep(0.1)
