"""The append-only audit log in a database (SQLite by default, PostgreSQL in production).

Tables:
  audit_head         one row: the log's size; incremented in the same transaction as each append, so
                     sequence numbers are contiguous and several processes can share one log safely
                     (PostgreSQL's and MariaDB's row lock, SQLite's writer lock)
  audit_events       seq, time, kind, the payload's SHA-256, the RFC 9162 leaf hash of those four, and
                     the log key's Ed25519 signature of the leaf hash
  audit_payloads     seq and the payload (JSON): deleting it at the end of retention keeps every leaf,
                     signature and proof valid
  audit_checkpoints  signed tree heads: size, root hash, time, signature

An append returns only once its transaction has committed: an acknowledged event is never lost. What is done
once per log (creating the tables, naming its key) runs in `exclusive`, one process at a time.
"""

from __future__ import annotations

import base64
import contextlib
import datetime as dt
import hashlib
import json
import sqlite3
import threading
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from audit.merkle import Frontier, leaf_hash

metadata = sa.MetaData()
head = sa.Table(
    "audit_head",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=False),
    sa.Column("size", sa.BigInteger, nullable=False),
)
events = sa.Table(
    "audit_events",
    metadata,
    sa.Column("seq", sa.BigInteger, primary_key=True, autoincrement=False),
    sa.Column("at", sa.String(32), nullable=False),
    sa.Column("kind", sa.String(32), nullable=False, index=True),
    sa.Column("payload_sha256", sa.String(64), nullable=False),
    sa.Column("leaf_hash", sa.String(64), nullable=False),
    sa.Column("signature", sa.String(100), nullable=False),
)
payloads = sa.Table(
    "audit_payloads",
    metadata,
    sa.Column("seq", sa.BigInteger, primary_key=True, autoincrement=False),
    sa.Column("body", sa.Text, nullable=False),
)
checkpoints = sa.Table(
    "audit_checkpoints",
    metadata,
    sa.Column("tree_size", sa.BigInteger, primary_key=True, autoincrement=False),
    sa.Column("root_hash", sa.String(64), nullable=False),
    sa.Column("at", sa.String(32), nullable=False),
    sa.Column("signature", sa.String(100), nullable=False),
)


class AuditUnavailableError(Exception):
    """The audit log cannot be written: whatever needed the event must not happen."""


def canonical(value: Any) -> bytes:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def leaf_data(seq: int, at: str, kind: str, payload_sha256: str) -> bytes:
    """What a leaf commits to: the event's header and its payload's digest (not the payload itself)."""
    return canonical({"seq": seq, "at": at, "kind": kind, "payload_sha256": payload_sha256})


def checkpoint_data(tree_size: int, root_hash: str, at: str) -> bytes:
    return canonical({"tree_size": tree_size, "root_hash": root_hash, "at": at})


def engine_for(url: str) -> sa.Engine:
    """An engine for the log; SQLite in WAL mode with full fsync on commit (durable on acknowledgement)."""
    engine = sa.create_engine(url)
    if engine.dialect.name == "sqlite":

        @sa.event.listens_for(engine, "connect")
        def _pragmas(connection: Any, _: Any) -> None:
            cursor = connection.cursor()
            cursor.execute("PRAGMA busy_timeout=5000")
            _wal(cursor)
            cursor.execute("PRAGMA synchronous=FULL")
            cursor.close()

    return engine


def _wal(cursor: Any) -> None:
    """Puts a SQLite database in WAL mode. Switching a new database while another process switches it too
    fails at once with "database is locked" (busy_timeout does not apply): tried again for up to 5 s."""
    deadline = time.monotonic() + 5
    while True:
        try:
            cursor.execute("PRAGMA journal_mode=WAL")
            return
        except sqlite3.OperationalError as error:
            if "locked" not in str(error) or time.monotonic() > deadline:
                raise
            time.sleep(0.01)


# The lock of `exclusive`: a PostgreSQL advisory lock key (its locks are per database), and a MariaDB/MySQL
# lock name (per server: the database's name is added).
LOCK_KEY = int.from_bytes(hashlib.sha256(b"lateral audit log").digest()[:8], "big", signed=True)
LOCK_NAME = "lateral-audit:"
LOCK_WAIT_S = 30


@contextlib.contextmanager
def exclusive(engine: sa.Engine) -> Iterator[sa.Connection]:
    """A transaction on the log that runs alone: no other `exclusive` on the same log, in this process or any
    other, runs at the same time. For what opening a log does once and must not do twice when several
    services open one log at the same instant: creating its tables and head row (concurrent `CREATE
    TABLE`s fail, on PostgreSQL with a unique violation in pg_type, on SQLite with "already exists"), and
    naming or handing over its key (two processes reading "no key yet" would both write one; two handing
    over would both sign a `key-rotated` with the old key, and the second would not verify).

    The lock is the database's own, so it holds across processes and machines:
    - PostgreSQL: `pg_advisory_xact_lock`, released at commit or rollback. DDL is transactional: the next
      holder finds the tables complete, or none.
    - MariaDB/MySQL: `GET_LOCK` (DDL commits implicitly, so the lock is the session's), released at the end
      or when the session ends.
    - SQLite: `BEGIN IMMEDIATE`, the database's write lock (waiting up to busy_timeout).
    - Other databases: a plain transaction (open a new log there from one process first).
    Appends do not take this lock: the head row serialises them, and they may run meanwhile.

    Raises:
        AuditUnavailableError: the lock was not had within LOCK_WAIT_S (MariaDB/MySQL).
        sqlalchemy.exc.SQLAlchemyError: the database failed (on PostgreSQL, no lock within LOCK_WAIT_S).
    """
    dialect = engine.dialect.name
    with engine.connect() as conn:
        if dialect in ("mysql", "mariadb"):
            name = (LOCK_NAME + (engine.url.database or ""))[:64]
            if conn.execute(sa.select(sa.func.get_lock(name, LOCK_WAIT_S))).scalar() != 1:
                raise AuditUnavailableError(f"the audit log's lock was not had within {LOCK_WAIT_S} s")
            conn.commit()
            try:
                with conn.begin():
                    yield conn
            finally:
                with contextlib.suppress(sa.exc.SQLAlchemyError):  # a broken session has released it
                    conn.execute(sa.select(sa.func.release_lock(name)))
                    conn.commit()
            return
        with conn.begin():
            if dialect == "postgresql":
                conn.exec_driver_sql(f"SET LOCAL lock_timeout = '{LOCK_WAIT_S}s'")
                conn.execute(sa.select(sa.func.pg_advisory_xact_lock(LOCK_KEY)))
            elif dialect == "sqlite":
                conn.exec_driver_sql("BEGIN IMMEDIATE")  # pysqlite has begun nothing yet: this is the begin
            yield conn


def create_tables(engine: sa.Engine) -> None:
    """Creates the tables and the head row, if missing; safe when several processes open one log at once."""
    with exclusive(engine) as conn:
        metadata.create_all(conn)
        if conn.execute(sa.select(head.c.size).where(head.c.id == 1)).first() is None:
            conn.execute(head.insert().values(id=1, size=0))


class _AppendSql:
    """The three statements of an append as the driver's own SQL: an append is the hot path of every check
    (the broker writes two events, each adapter one): with Core statements a one-event append on SQLite took
    0.94 ms of CPU, this way 0.58 ms, hashing and signing included (measured 2026-11-21 on the benchmark
    machine). Drivers with another parameter style than `?` or `%s` use the Core statements. Databases without
    UPDATE ... RETURNING (MariaDB, MySQL) read the new size back in the same transaction."""

    def __init__(self, dialect: sa.Dialect) -> None:
        mark = {"qmark": "?", "format": "%s", "pyformat": "%s"}.get(dialect.paramstyle)
        self._mark = mark
        self._returning = dialect.update_returning
        if mark is not None:
            self._bump = f"UPDATE {head.name} SET size = size + {mark} WHERE id = 1"
            if self._returning:
                self._bump += " RETURNING size"
            self._size = f"SELECT size FROM {head.name} WHERE id = 1"
            columns = ", ".join(c.name for c in events.columns)
            self._events = f"INSERT INTO {events.name} ({columns}) VALUES ({', '.join([mark] * 6)})"
            self._payloads = f"INSERT INTO {payloads.name} (seq, body) VALUES ({mark}, {mark})"

    def bump(self, conn: sa.Connection, count: int) -> int:
        """Reserves `count` sequence numbers (holding the head row until commit); returns the last."""
        if self._mark is None:
            bump = head.update().where(head.c.id == 1).values(size=head.c.size + count)
            if self._returning:
                return int(conn.execute(bump.returning(head.c.size)).scalar_one())
            conn.execute(bump)
            return int(conn.execute(sa.select(head.c.size).where(head.c.id == 1)).scalar_one())
        if self._returning:
            return int(conn.exec_driver_sql(self._bump, (count,)).scalar_one())
        conn.exec_driver_sql(self._bump, (count,))
        return int(conn.exec_driver_sql(self._size).scalar_one())

    def insert(self, conn: sa.Connection, rows: list[tuple[Any, ...]], bodies: list[tuple[int, str]]) -> None:
        if self._mark is None:
            names = events.columns.keys()
            conn.execute(events.insert(), [dict(zip(names, row, strict=True)) for row in rows])
            conn.execute(payloads.insert(), [{"seq": seq, "body": body} for seq, body in bodies])
            return
        conn.exec_driver_sql(self._events, rows)
        conn.exec_driver_sql(self._payloads, bodies)


class _Prepared:
    """Events ready to be written: their payloads serialised and digested, and their time."""

    def __init__(self, items: Sequence[tuple[str, dict[str, Any]]]) -> None:
        self.kinds = [kind for kind, _ in items]
        self.bodies = [canonical(payload).decode() for _, payload in items]
        self.digests = [hashlib.sha256(body.encode()).hexdigest() for body in self.bodies]
        self.at = _now()


@dataclass(frozen=True)
class Checkpoint:
    tree_size: int
    root_hash: str
    at: str
    signature: str


def _now() -> str:
    return dt.datetime.now(dt.UTC).isoformat(timespec="microseconds")


class AuditLog:
    """Appends events and signs checkpoints. Thread-safe; appends block until durable."""

    def __init__(self, url: str, signer: Ed25519PrivateKey, *, checkpoint_every: int = 100) -> None:
        try:
            self.engine = engine_for(url)
            create_tables(self.engine)
        except sa.exc.SQLAlchemyError as error:
            raise AuditUnavailableError(
                f"the audit log at {_safe(url)} cannot be opened: {type(error).__name__}"
            ) from None
        self._signer = signer
        self._sql = _AppendSql(self.engine.dialect)
        self._every = checkpoint_every
        self._lock = threading.Lock()
        self._since_checkpoint = 0
        # The tree so far, extended by each checkpoint with the leaves appended since (by any process).
        self._frontier = Frontier()
        self._checkpointing = threading.Lock()
        # For monitoring: the size this process last saw, and when the last checkpoint was signed.
        self.size = 0
        self.checkpoint_at: dt.datetime | None = None
        try:
            with self.engine.connect() as conn:
                self.size = int(conn.execute(sa.select(head.c.size)).scalar() or 0)
                last = conn.execute(sa.select(sa.func.max(checkpoints.c.at))).scalar()
                self.checkpoint_at = dt.datetime.fromisoformat(last) if last else None
        except sa.exc.SQLAlchemyError as error:
            raise AuditUnavailableError(
                f"the audit log at {_safe(url)} cannot be read: {type(error).__name__}"
            ) from None

    def append(self, kind: str, payload: dict[str, Any], *, signer: Ed25519PrivateKey | None = None) -> int:
        """Writes one event and returns its sequence number once committed. `signer` signs this one event
        instead of the log's key (the old key handing over to a new one).

        Raises:
            AuditUnavailableError: the event could not be made durable.
        """
        return self.append_many([(kind, payload)], signer=signer)[0]

    def append_many(
        self, items: Sequence[tuple[str, dict[str, Any]]], *, signer: Ed25519PrivateKey | None = None
    ) -> list[int]:
        """Writes events in one transaction (one commit, one flush to disk: a group commit) and returns their
        contiguous sequence numbers once committed. All or none are written.

        Raises:
            AuditUnavailableError: the events could not be made durable.
        """
        if not items:
            return []
        prepared = _Prepared(items)  # outside the transaction: the head row is held only for what needs it
        try:
            with self.engine.begin() as conn:
                seqs = self._write(conn, prepared, signer)
        except sa.exc.SQLAlchemyError as error:
            raise AuditUnavailableError(f"the audit log cannot be written: {type(error).__name__}") from None
        with self._lock:
            self._since_checkpoint += len(items)
            due = self._since_checkpoint >= self._every
            self.size = max(self.size, seqs[-1])
        if due:
            self.checkpoint()
        return seqs

    def write(
        self,
        conn: sa.Connection,
        items: Sequence[tuple[str, dict[str, Any]]],
        *,
        signer: Ed25519PrivateKey | None = None,
    ) -> list[int]:
        """Writes events in the caller's transaction (one of `exclusive`): durable once it commits, gone if it
        rolls back. Returns their contiguous sequence numbers."""
        return self._write(conn, _Prepared(items), signer)

    def _write(self, conn: sa.Connection, prepared: _Prepared, signer: Ed25519PrivateKey | None) -> list[int]:
        key = signer or self._signer
        last = self._sql.bump(conn, len(prepared.kinds))
        first = last - len(prepared.kinds) + 1
        rows = []
        for n, (kind, digest) in enumerate(zip(prepared.kinds, prepared.digests, strict=True)):
            leaf = leaf_hash(leaf_data(first + n, prepared.at, kind, digest))
            signature = base64.b64encode(key.sign(leaf)).decode()
            rows.append((first + n, prepared.at, kind, digest, leaf.hex(), signature))
        self._sql.insert(conn, rows, [(first + n, body) for n, body in enumerate(prepared.bodies)])
        return list(range(first, last + 1))

    @contextlib.contextmanager
    def exclusive(self) -> Iterator[sa.Connection]:
        """A transaction that runs alone on this log, across processes (see the module's `exclusive`), for
        `last_of` and `write` to decide and write together (naming the log's key).

        Raises:
            AuditUnavailableError: the database failed, or the lock was not had.
        """
        try:
            with exclusive(self.engine) as conn:
                yield conn
        except sa.exc.SQLAlchemyError as error:
            raise AuditUnavailableError(f"the audit log cannot be written: {type(error).__name__}") from None

    def checkpoint(self) -> Checkpoint | None:
        """Signs the current tree head, if events were added since the last one. Reads only the leaves
        appended since this process's last checkpoint (sequence numbers are contiguous and committed in
        order: each append holds the head row until it commits). Should a database ever show a later append
        before an earlier one, the tree stops at the gap: the rest waits for the next checkpoint."""
        with self._lock:
            self._since_checkpoint = 0
        with self._checkpointing:
            return self._sign_head()

    def _sign_head(self) -> Checkpoint | None:
        try:
            with self.engine.begin() as conn:
                last = conn.execute(sa.select(sa.func.max(checkpoints.c.tree_size))).scalar() or 0
                for seq, leaf in conn.execute(
                    sa.select(events.c.seq, events.c.leaf_hash)
                    .where(events.c.seq > self._frontier.size)
                    .order_by(events.c.seq)
                ):
                    if seq != self._frontier.size + 1:
                        break
                    self._frontier.append(bytes.fromhex(leaf))
                size = self._frontier.size
                if size <= last:
                    return None
                at = _now()
                root_hash = self._frontier.root().hex()
                signature = base64.b64encode(self._signer.sign(checkpoint_data(size, root_hash, at))).decode()
                conn.execute(
                    checkpoints.insert().values(
                        tree_size=size, root_hash=root_hash, at=at, signature=signature
                    )
                )
        except sa.exc.IntegrityError:
            self.checkpoint_at = dt.datetime.now(dt.UTC)
            return None  # another process signed this size first
        except sa.exc.SQLAlchemyError as error:
            raise AuditUnavailableError(
                f"the audit checkpoint cannot be written: {type(error).__name__}"
            ) from None
        self.checkpoint_at = dt.datetime.fromisoformat(at)
        return Checkpoint(size, root_hash, at, signature)

    def last_of(self, kinds: tuple[str, ...], conn: sa.Connection | None = None) -> dict[str, Any] | None:
        """The payload of the latest event of these kinds, if any (read in `conn`'s transaction if given)."""
        query = (
            sa.select(payloads.c.body)
            .join(events, events.c.seq == payloads.c.seq)
            .where(events.c.kind.in_(kinds))
            .order_by(events.c.seq.desc())
            .limit(1)
        )
        if conn is not None:
            body = conn.execute(query).scalar()
        else:
            with self.engine.connect() as own:
                body = own.execute(query).scalar()
        return json.loads(body) if body else None

    def close(self) -> None:
        self.engine.dispose()


def _safe(url: str) -> str:
    """A database URL without its password, for messages."""
    try:
        return sa.engine.make_url(url).render_as_string(hide_password=True)
    except sa.exc.ArgumentError:
        return "(an invalid URL)"
