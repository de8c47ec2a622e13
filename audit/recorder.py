"""What the broker and the adapters write to their audit logs, and when.

Event kinds: check-received (durable before any agency is asked), check-completed, check-denied (by the
agreement) and check-invalid at the broker; disclosure and disclosure-refused at an adapter; agreement-
loaded at both; audit-read by the auditor tools. The subject appears only as a keyed pseudonym and, with
the worker's justification (free text that may name people), sealed to the auditors.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import Mapping, Sequence
from typing import Any

from audit.keys import AuditKeys, AuditSection, load_keys
from audit.rotation import ensure_key
from audit.sealing import address_pseudonym, pseudonym, seal
from audit.store import AuditLog, AuditUnavailableError
from lateral.config import ConfigError
from lateral.errors import UnavailableError
from protos.lateral.v1 import common_pb2

log = logging.getLogger(__name__)

FINDING_FIELDS = {
    "categories": "category",
    "latest_activity_date": "latest_date",
    "activity_count": "count",
    "people_count": "people_count",
    "contact": "contact",
}


def released_fields(finding: common_pb2.Finding) -> list[str]:
    """The names (never the values) of the fields a finding carries."""
    present = {f.name for f, _ in finding.ListFields()}
    return ["outcome", *(name for field, name in FINDING_FIELDS.items() if field in present)]


class GroupCommit:
    """Appends from many concurrent checks share commits: while one batch is being made durable (off the
    event loop, in one transaction), the next gathers. A lone check waits for one commit as before; at
    concurrency 32 one flush to disk serves many events instead of one each.

    The writer is a task of its own, so a caller that gives up (a cancelled call) neither cancels the write
    nor loses the others' events; its event is still written.
    """

    MAX_BATCH = 256

    def __init__(self, log: AuditLog) -> None:
        self._log = log
        self._pending: list[tuple[str, dict[str, Any], asyncio.Future[int]]] = []
        self._writer: asyncio.Task[None] | None = None

    async def append(self, kind: str, payload: dict[str, Any]) -> int:
        """Appends one event, durable on return.

        Raises:
            AuditUnavailableError: the batch holding it could not be made durable.
        """
        future: asyncio.Future[int] = asyncio.get_running_loop().create_future()
        self._pending.append((kind, payload, future))
        if self._writer is None or self._writer.done():
            self._writer = asyncio.create_task(self._drain(), name="audit group commit")
        return await asyncio.shield(future)

    async def _drain(self) -> None:
        while self._pending:
            batch, self._pending = self._pending[: self.MAX_BATCH], self._pending[self.MAX_BATCH :]
            try:
                seqs = await asyncio.to_thread(self._log.append_many, [(k, p) for k, p, _ in batch])
            except Exception as error:  # every caller of the batch hears why, none is left waiting
                for *_, future in batch:
                    if not future.done():
                        future.set_exception(error)
            else:
                for seq, (*_, future) in zip(seqs, batch, strict=True):
                    if not future.done():
                        future.set_result(seq)

    async def flush(self) -> None:
        """Waits until every event handed in so far is written (or has failed)."""
        if self._writer is not None:
            await self._writer


class Recorder:
    """One service's audit log with its keys; appends run off the event loop, share commits when checks
    run concurrently (GroupCommit), and fail closed."""

    def __init__(self, section: AuditSection) -> None:
        self.keys: AuditKeys = load_keys(section)
        self.section = section
        try:
            self.log = AuditLog(section.url, self.keys.signer, checkpoint_every=section.checkpoint_every)
            ensure_key(self.log, self.keys.signer, self.keys.previous)
        except AuditUnavailableError as error:
            raise UnavailableError(str(error)) from None
        self._commits = GroupCommit(self.log)
        self._task: asyncio.Task[None] | None = None

    def subject(self, subject: common_pb2.Subject, justification: str = "") -> dict[str, str]:
        sealed = json.dumps(
            {"subject": json.loads(_message_json(subject)), "justification": justification},
            ensure_ascii=False,
        )
        return {
            "subject_pseudonym": pseudonym(self.keys.pseudonym, subject),
            "sealed": seal(self.keys.auditor, sealed.encode()),
        }

    def sealed(self, **details: str) -> dict[str, str]:
        """Free text that may name someone (a review's justification), sealed to the auditors."""
        return {"sealed": seal(self.keys.auditor, json.dumps(details, ensure_ascii=False).encode())}

    def address(self, address: common_pb2.Address, justification: str = "") -> dict[str, str]:
        """A household check's address: a keyed pseudonym, and the address sealed to the auditors."""
        sealed = json.dumps(
            {"address": json.loads(_message_json(address)), "justification": justification},
            ensure_ascii=False,
        )
        return {
            "address_pseudonym": address_pseudonym(self.keys.pseudonym, address),
            "sealed": seal(self.keys.auditor, sealed.encode()),
        }

    async def record(self, kind: str, payload: Mapping[str, Any]) -> int:
        """Appends one event, durable on return.

        Raises:
            UnavailableError: the log cannot be written; the caller must not go on as if it were.
        """
        try:
            return await self._commits.append(kind, dict(payload))
        except AuditUnavailableError as error:
            log.error("audit: %s", error)
            raise UnavailableError(
                "the audit log cannot be written, so nothing was done; try again shortly", 5.0
            ) from None

    async def start(self) -> None:
        """Signs checkpoints every checkpoint_seconds in the background."""
        self._task = asyncio.create_task(self._checkpoints(), name="audit checkpoints")

    async def _checkpoints(self) -> None:
        while True:
            await asyncio.sleep(self.section.checkpoint_seconds)
            try:
                await asyncio.to_thread(self.log.checkpoint)
            except AuditUnavailableError as error:
                log.error("audit: %s", error)

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        await self._commits.flush()
        with contextlib.suppress(AuditUnavailableError):
            await asyncio.to_thread(self.log.checkpoint)
        self.log.close()


async def open_recorder(
    section: AuditSection | None, *, insecure_dev: bool, what: str, agreement: str, digest: str
) -> Recorder | None:
    """A service's recorder, with the agreement it runs under as its first event.

    Raises:
        ConfigError: no [audit] section outside development, a key is missing, or the log cannot be opened.
    """
    if section is None:
        if not insecure_dev:
            raise ConfigError(
                f"the {what} has no audit log: add an [audit] section (lateral audit keygen makes its keys)"
            )
        log.warning("%s: no audit log (development only): checks are not recorded", what)
        return None
    try:
        recorder = Recorder(section)
        await recorder.record("agreement-loaded", {"agreement": agreement, "digest": digest})
    except UnavailableError as error:
        raise ConfigError(f"the {what}'s audit log: {error.message}") from None
    return recorder


def _message_json(message: common_pb2.Subject | common_pb2.Address) -> str:
    from google.protobuf import json_format

    return json_format.MessageToJson(message, indent=None)


def decisions_payload(decisions: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    return {agency: {"reason": d.reason, "clauses": list(d.clauses)} for agency, d in decisions.items()}


def results_payload(results: Sequence[common_pb2.AgencyResult]) -> dict[str, dict[str, Any]]:
    return {
        r.agency_id: {
            "outcome": common_pb2.Outcome.Name(r.finding.outcome).removeprefix("OUTCOME_"),
            "released": released_fields(r.finding),
            "status": r.status.code,
            "reason": r.status.reason,
            "clauses": list(r.status.clause_ids),
        }
        for r in results
    }
