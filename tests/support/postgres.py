"""A real PostgreSQL for the test suite and the benchmarks, found or started by the tests themselves.

In this order (DESIGN section 5):

1. ``TEST_DATABASE_URL``, if set: a server someone runs for us (the role must be allowed to create
   databases);
2. testcontainers' PostgresContainer, when a Docker engine answers (asked with a short timeout);
3. a throwaway cluster from this machine's PostgreSQL binaries (``initdb`` + ``pg_ctl``, run as the
   ``postgres`` OS user when we are root), on a free loopback port, removed at the end.

If none works, :func:`start_postgres` raises with the reason for each, and so the ``postgres_url``
fixture errors: the suite never skips PostgreSQL. Each test module gets its own database
(``postgres_database``), created in the one server of the session.

Also here: :class:`TcpProxy`, a loopback forwarder that can drop the line to PostgreSQL and restore
it, which is how a test makes any of the three servers "go away" mid-run.
"""

from __future__ import annotations

import asyncio
import contextlib
import glob
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import time
import uuid
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psycopg
import pytest
from sqlalchemy.engine import make_url

ENV_URL = "TEST_DATABASE_URL"


def _sa_url(url: str) -> str:
    """``url`` as a SQLAlchemy psycopg URL."""
    parsed = make_url(url)
    return parsed.set(drivername="postgresql+psycopg").render_as_string(hide_password=False)


def _libpq_url(url: str) -> str:
    parsed = make_url(url)
    return parsed.set(drivername="postgresql").render_as_string(hide_password=False)


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def _wait_ready(url: str, timeout_s: float = 30.0) -> None:
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            with psycopg.connect(_libpq_url(url), connect_timeout=2) as conn:
                conn.execute("SELECT 1")
                return
        except psycopg.OperationalError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.05)


# -- the throwaway cluster ----------------------------------------------------------------------


def _pg_bindir() -> Path:
    """Where initdb and pg_ctl are: ``pg_config --bindir``, else the newest /usr/lib/postgresql/N."""
    pg_config = shutil.which("pg_config")
    if pg_config:
        out = subprocess.run([pg_config, "--bindir"], capture_output=True, text=True, check=False)
        candidate = Path(out.stdout.strip())
        if (candidate / "initdb").is_file():
            return candidate
    found = sorted(
        glob.glob("/usr/lib/postgresql/*/bin/initdb"),
        key=lambda p: int(Path(p).parts[-3]) if Path(p).parts[-3].isdigit() else 0,
    )
    if found:
        return Path(found[-1]).parent
    initdb = shutil.which("initdb")
    if initdb:
        return Path(initdb).parent
    raise FileNotFoundError("no PostgreSQL binaries (initdb, pg_ctl) on this machine")


@dataclass
class LocalCluster:
    """A PostgreSQL cluster in a temporary directory, owned by the ``postgres`` user when root."""

    durable: bool = False
    """fsync on (for benchmarks); off makes the tests faster and loses nothing a test needs."""
    bindir: Path = field(default_factory=_pg_bindir)
    root: Path = field(init=False)
    port: int = field(init=False)
    started_in_s: float = field(init=False, default=0.0)

    def __post_init__(self) -> None:
        self._as_user: list[str] = []
        if os.geteuid() == 0:
            try:
                pwd.getpwnam("postgres")
            except KeyError:
                raise RuntimeError(
                    "running as root, and there is no `postgres` OS user to run initdb as"
                ) from None
            runuser = shutil.which("runuser")
            self._as_user = [runuser, "-u", "postgres", "--"] if runuser else []
            if not runuser:
                raise RuntimeError("running as root, and `runuser` is missing to run initdb")
        self.root = Path(tempfile.mkdtemp(prefix="qs-pg-"))
        if self._as_user:
            shutil.chown(self.root, "postgres")
        self.port = _free_port()

    @property
    def data(self) -> Path:
        return self.root / "data"

    @property
    def url(self) -> str:
        return f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/postgres"

    def _run(self, *args: str, timeout: float = 60) -> None:
        cmd = [*self._as_user, str(self.bindir / args[0]), *args[1:]]
        done = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, check=False)
        if done.returncode != 0:
            log = self.root / "server.log"
            tail = log.read_text()[-2000:] if log.exists() else ""
            raise RuntimeError(
                f"{' '.join(args[:2])} failed ({done.returncode}): {done.stderr.strip()}\n{tail}"
            )

    def init(self) -> None:
        self._run(
            "initdb",
            "-D",
            str(self.data),
            "-U",
            "postgres",
            "--auth=trust",
            "-E",
            "UTF8",
            "--no-sync",
            "--no-instructions",
        )

    def start(self) -> None:
        settings = [
            f"-p {self.port}",
            f"-k {self.root}",
            "-c listen_addresses=127.0.0.1",
            "-c max_connections=200",
        ]
        if not self.durable:
            settings += ["-c fsync=off", "-c synchronous_commit=off", "-c full_page_writes=off"]
        self._run(
            "pg_ctl",
            "start",
            "-D",
            str(self.data),
            "-w",
            "-t",
            "60",
            "-l",
            str(self.root / "server.log"),
            "-o",
            " ".join(settings),
        )

    def stop(self) -> None:
        self._run("pg_ctl", "stop", "-D", str(self.data), "-m", "fast", "-w", "-t", "60")

    def destroy(self) -> None:
        with contextlib.suppress(Exception):
            self.stop()
        shutil.rmtree(self.root, ignore_errors=True)

    def up(self) -> LocalCluster:
        began = time.monotonic()
        try:
            self.init()
            self.start()
            _wait_ready(self.url)
        except BaseException:
            self.destroy()
            raise
        self.started_in_s = time.monotonic() - began
        return self


# -- the server of the session ------------------------------------------------------------------


@dataclass
class PostgresServer:
    """A running PostgreSQL: ``url`` reaches a database we may create databases from."""

    url: str
    source: str
    started_in_s: float
    cluster: LocalCluster | None = None
    """Set when it is a throwaway cluster (which a test may stop and start)."""
    _teardown: Callable[[], None] = lambda: None

    def close(self) -> None:
        self._teardown()


def _docker_answers(timeout_s: float = 2.0) -> str | None:
    """None when a Docker engine answers ``GET /_ping``; else why not. Asked over the socket
    directly (unix or tcp, as DOCKER_HOST says), with a short timeout, so a missing engine costs
    nothing and a hung one at most ``timeout_s``."""
    host = os.environ.get("DOCKER_HOST", "unix:///var/run/docker.sock")
    try:
        if host.startswith("unix://"):
            path = host.removeprefix("unix://")
            if not os.path.exists(path):
                return f"no Docker socket at {path}"
            sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            address: str | tuple[str, int] = path
        elif host.startswith("tcp://"):
            parsed = make_url(host.replace("tcp://", "docker://", 1))
            sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            address = (parsed.host or "127.0.0.1", parsed.port or 2375)
        else:
            return f"DOCKER_HOST {host!r} is not a unix:// or tcp:// address"
        with sock:
            sock.settimeout(timeout_s)
            sock.connect(address)
            sock.sendall(b"GET /_ping HTTP/1.0\r\nHost: docker\r\n\r\n")
            answer = sock.recv(64)
    except OSError as exc:
        return f"{host}: {exc}"
    if not answer.startswith(b"HTTP/1.") or b" 200 " not in answer[:16]:
        return f"{host} answered {answer[:32]!r}"
    return None


def _postgres_container() -> Any:
    """testcontainers' PostgresContainer (4.x moved it to ``community``; the old path warns)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        try:
            from testcontainers.community.postgres import PostgresContainer
        except ImportError:
            from testcontainers.postgres import PostgresContainer
    return PostgresContainer("postgres:16-alpine", driver="psycopg")


def start_postgres(*, durable: bool = False) -> PostgresServer:
    """A PostgreSQL server, by the order in the module docstring. Call ``close()`` when done."""
    reasons: list[str] = []
    began = time.monotonic()
    env_url = os.environ.get(ENV_URL, "").strip()
    if env_url:
        url = _sa_url(env_url)
        _wait_ready(url, timeout_s=10)
        return PostgresServer(url, ENV_URL, time.monotonic() - began)
    reasons.append(f"{ENV_URL} is not set")
    why_not = _docker_answers()
    if why_not is None:
        try:
            container = _postgres_container()
            container.start()
            url = _sa_url(container.get_connection_url())
            _wait_ready(url)
            return PostgresServer(
                url, "testcontainers", time.monotonic() - began, None, container.stop
            )
        except Exception as exc:
            reasons.append(f"testcontainers failed: {exc}")
    else:
        reasons.append(f"no Docker engine answers ({why_not})")
    try:
        cluster = LocalCluster(durable=durable).up()
    except Exception as exc:
        reasons.append(f"no throwaway cluster: {exc}")
        raise RuntimeError(
            "PostgreSQL is required by the test suite and none could be had: " + "; ".join(reasons)
        ) from exc
    return PostgresServer(
        cluster.url, "local cluster", cluster.started_in_s, cluster, cluster.destroy
    )


def create_database(server_url: str, prefix: str = "qs") -> str:
    """A new, empty database on the server; returns its URL."""
    name = f"{prefix}_{uuid.uuid4().hex[:12]}".lower()
    with psycopg.connect(_libpq_url(server_url), autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    return make_url(server_url).set(database=name).render_as_string(hide_password=False)


def drop_database(server_url: str, url: str) -> None:
    name = make_url(url).database
    with psycopg.connect(_libpq_url(server_url), autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


# -- fixtures -----------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[PostgresServer]:
    server = start_postgres()
    try:
        yield server
    finally:
        server.close()


@pytest.fixture(scope="session")
def postgres_url(postgres_server: PostgresServer) -> str:
    """The session's PostgreSQL server (SQLAlchemy psycopg URL of its maintenance database)."""
    return postgres_server.url


@pytest.fixture(scope="module")
def postgres_database(postgres_url: str) -> Iterator[str]:
    """A fresh database for one test module, dropped after it."""
    url = create_database(postgres_url)
    try:
        yield url
    finally:
        drop_database(postgres_url, url)


# -- a line to PostgreSQL that a test can cut ---------------------------------------------------


class TcpProxy:
    """Forwards a loopback port to ``target``; :meth:`cut` refuses new connections and drops the
    open ones (as a dead server or network does), :meth:`restore` listens again on the same port."""

    def __init__(self, target_host: str, target_port: int) -> None:
        self._target = (target_host, target_port)
        self.port = _free_port()
        self._server: asyncio.Server | None = None
        self._writers: set[asyncio.StreamWriter] = set()

    async def restore(self) -> None:
        if self._server is None:
            self._server = await asyncio.start_server(self._serve, "127.0.0.1", self.port)

    async def cut(self) -> None:
        server, self._server = self._server, None
        if server is not None:
            server.close()
        for writer in list(self._writers):
            writer.transport.abort()
        self._writers.clear()
        if server is not None:
            await server.wait_closed()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            up_reader, up_writer = await asyncio.open_connection(*self._target)
        except OSError:
            writer.transport.abort()
            return
        self._writers.update((writer, up_writer))

        async def pipe(src: asyncio.StreamReader, dst: asyncio.StreamWriter) -> None:
            try:
                while data := await src.read(65536):
                    dst.write(data)
                    await dst.drain()
            except (ConnectionError, OSError):
                pass
            finally:
                dst.transport.abort()

        await asyncio.gather(pipe(reader, up_writer), pipe(up_reader, writer))
        self._writers.difference_update((writer, up_writer))

    def url_for(self, url: str) -> str:
        """``url`` redirected through this proxy."""
        return (
            make_url(url)
            .set(host="127.0.0.1", port=self.port)
            .render_as_string(hide_password=False)
        )
