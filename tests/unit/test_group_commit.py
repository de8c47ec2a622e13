"""Group commit of the audit log on a real SQLite file: concurrent appends share commits yet each returns
only once durable, with contiguous sequence numbers; a failed commit fails every event of its batch and
leaves no caller waiting; a caller that gives up does not lose its event or anyone else's."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from audit.recorder import GroupCommit
from audit.store import AuditLog, AuditUnavailableError, events
from audit.verify import verify_log

KEY = Ed25519PrivateKey.generate()


def _commits(log: AuditLog) -> list[int]:
    """Counts the log's commits (each one flush of the write-ahead log to disk)."""
    count = [0]

    @sa.event.listens_for(log.engine, "commit")
    def _commit(_: Any) -> None:
        count[0] += 1

    return count


async def test_concurrent_appends_share_commits_and_number_contiguously(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'audit.db'}"
    log = AuditLog(url, KEY, checkpoint_every=1000)
    commits = _commits(log)
    group = GroupCommit(log)
    seqs = await asyncio.gather(*(group.append("check-received", {"check_id": f"c{i}"}) for i in range(64)))
    assert sorted(seqs) == list(range(1, 65))
    assert seqs == list(range(1, 65))  # in the order they were handed in
    assert 1 <= commits[0] < 64 / 4
    with log.engine.connect() as conn:
        stored = conn.execute(sa.select(sa.func.count()).select_from(events)).scalar()
    assert stored == 64
    log.checkpoint()
    log.close()
    result = verify_log(url, KEY.public_key())
    assert (result.ok, result.size) == (True, 64)


async def test_a_lone_append_is_one_commit_and_durable_on_return(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'audit.db'}"
    log = AuditLog(url, KEY)
    commits = _commits(log)
    group = GroupCommit(log)
    assert await group.append("check-received", {"check_id": "c1"}) == 1
    assert commits[0] == 1
    other = AuditLog(url, KEY)  # another connection sees it: committed
    assert other.last_of(("check-received",)) == {"check_id": "c1"}
    other.close()
    log.close()


async def test_a_failed_commit_fails_every_event_of_the_batch_and_nothing_is_half_written(
    tmp_path: Path,
) -> None:
    url = f"sqlite:///{tmp_path / 'audit.db'}"
    log = AuditLog(url, KEY)
    with log.engine.begin() as conn:
        conn.execute(sa.text("DROP TABLE audit_payloads"))
    group = GroupCommit(log)
    outcomes = await asyncio.wait_for(
        asyncio.gather(
            *(group.append("check-received", {"check_id": f"c{i}"}) for i in range(10)),
            return_exceptions=True,
        ),
        timeout=10,
    )
    assert [type(o) for o in outcomes] == [AuditUnavailableError] * 10
    assert {str(o) for o in outcomes} == {"the audit log cannot be written: OperationalError"}
    with log.engine.connect() as conn:
        assert conn.execute(sa.select(sa.func.count()).select_from(events)).scalar() == 0
        assert conn.execute(sa.text("SELECT size FROM audit_head")).scalar() == 0
    log.close()


async def test_a_caller_that_gives_up_loses_neither_its_event_nor_the_others(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'audit.db'}"
    log = AuditLog(url, KEY)
    group = GroupCommit(log)
    leaving = asyncio.create_task(group.append("check-received", {"check_id": "gone"}))
    staying = asyncio.create_task(group.append("check-received", {"check_id": "here"}))
    await asyncio.sleep(0)
    leaving.cancel()
    assert await staying == 2
    with pytest.raises(asyncio.CancelledError):
        await leaving
    await group.flush()
    with log.engine.connect() as conn:
        assert conn.execute(sa.select(sa.func.count()).select_from(events)).scalar() == 2
    log.close()
