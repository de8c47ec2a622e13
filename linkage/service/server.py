"""The Linkage gRPC service: takes the agencies' encodings, links them, lists review candidates to the
broker (docs/proactive.md).

Who may call what is fixed by the agreement and the certificates, never by a request: an agency's encodings
come only from an adapter certificate of the party that holds that agency, and candidates go only to the
broker identities configured. Every publication, linking, listing and release of a candidate's members is
in the service's own audit log. Nothing it receives, stores, logs or answers names anyone.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import re
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import grpc
from grpc_health.v1.health import HealthServicer

from audit.recorder import Recorder, open_recorder
from lateral.config import ConfigError
from lateral.errors import (
    FieldViolation,
    InvalidRequestError,
    NotFoundError,
    PermissionDeniedError,
    maps_errors,
)
from lateral.rpc import add_standard_services, bind, server_options, timestamp
from linkage.candidates import ActivityEvent, ReviewCandidate, ReviewRules, review_candidates
from linkage.encoding import DEFAULT_PARAMS
from linkage.link import EncodedRecord, LinkParams, Member, link
from linkage.service.config import LinkageServiceConfig
from linkage.service.store import Store, StoredEncoding
from pki.tls import Tls
from policy.agreement import load_agreement
from policy.linkage import DIGEST, KEY_ID, TOKEN, LinkageTerms
from policy.trust import TrustedAgreement, load_trusted, local_today
from protos.lateral.v1 import linkage_pb2, linkage_pb2_grpc

log = logging.getLogger(__name__)

SERVICE_NAME = linkage_pb2.DESCRIPTOR.services_by_name["Linkage"].full_name
CATEGORY = re.compile(r"[a-z0-9][a-z0-9-]{0,62}")
MAX_BATCH = 2000
MAX_ACTIVITY = 200
# Large enough for a batch of MAX_BATCH encodings with their activity.
_MAX_MESSAGE = 8 * 1024 * 1024


@dataclass(frozen=True)
class Linked:
    """The result of the latest linking: what ListCandidates and CandidateMembers answer from."""

    key_id: str
    at: dt.datetime
    candidates: tuple[ReviewCandidate, ...]
    encodings: dict[str, int] = field(default_factory=dict)
    # Each member's published activity, for the per-agency rows of a listing.
    activity: dict[Member, tuple[tuple[dt.date, str], ...]] = field(default_factory=dict, repr=False)

    def candidate(self, candidate_id: str) -> ReviewCandidate | None:
        return next((c for c in self.candidates if c.candidate_id == candidate_id), None)


def epoch_of(key_id: str) -> int:
    return int(key_id.split(":", 1)[0])


class LinkageServicer(linkage_pb2_grpc.LinkageServicer):
    def __init__(
        self,
        config: LinkageServiceConfig,
        trusted: TrustedAgreement,
        store: Store,
        tls: Tls | None,
        recorder: Recorder | None,
        clock: Callable[[], dt.datetime] = lambda: dt.datetime.now(dt.UTC),
    ) -> None:
        self._config = config
        self._store = store
        self._tls = tls
        self._recorder = recorder
        self._clock = clock
        self.adopt(trusted)
        self._brokers = frozenset(config.tls.brokers) if config.tls is not None else frozenset()
        self._encoded_bytes = DEFAULT_PARAMS.encoded_bytes
        self.linked: Linked | None = None
        self._relink_soon: asyncio.Task[None] | None = None
        self._linking = asyncio.Lock()

    def adopt(self, trusted: TrustedAgreement) -> None:
        """Runs under this agreement from now on (create_server and reload refuse one without [linkage])."""
        terms = trusted.agreement.linkage
        assert terms is not None
        self.trusted = trusted
        self._terms: LinkageTerms = terms
        self._publishers = {
            agency: party.certificate_identity
            for agency in terms.agencies
            if (party := trusted.agreement.controller_of(agency)) is not None
        }

    # Who may call.

    def _require_publisher(self, context: Any, agency: str) -> None:
        if agency not in self._publishers:
            raise InvalidRequestError(
                [FieldViolation("agency_id", "is not an agency the agreement's [linkage] names")]
            )
        if self._tls is None:
            return
        peer = self._tls.peer_of(context).identity
        if peer.role != "adapter" or peer.organisation_uri != self._publishers[agency]:
            log.warning("publication refused: a %s of another organisation for %s", peer.role, agency)
            raise PermissionDeniedError(
                f"only an adapter of the party that holds {agency} may publish its encodings",
                "NOT_THE_AGENCY",
            )

    def _require_broker(self, context: Any) -> None:
        if self._tls is None:
            return
        peer = self._tls.peer_of(context).identity
        if peer.uri not in self._brokers:
            log.warning("candidates refused: caller is a %s, not the configured broker", peer.role)
            raise PermissionDeniedError(
                "only the federation's broker may read review candidates", "NOT_THE_BROKER"
            )

    async def _audit(self, kind: str, **payload: Any) -> None:
        if self._recorder is not None:
            await self._recorder.record(kind, payload)

    def _today(self) -> dt.date:
        return local_today(self.trusted.agreement)

    # Publishing.

    @maps_errors
    async def Holdings(
        self,
        request: linkage_pb2.HoldingsRequest,
        context: grpc.aio.ServicerContext[linkage_pb2.HoldingsRequest, linkage_pb2.HoldingsResponse],
    ) -> linkage_pb2.HoldingsResponse:
        self._require_publisher(context, request.agency_id)
        if not KEY_ID.fullmatch(request.key_id):
            raise InvalidRequestError(
                [FieldViolation("key_id", "must be a linkage key id ('<epoch>:<hex>')")]
            )
        held = await asyncio.to_thread(self._store.holdings, request.agency_id, request.key_id)
        return linkage_pb2.HoldingsResponse(
            holdings=[linkage_pb2.Holding(token=t, digest=d) for t, d in sorted(held.items())]
        )

    def _encodings(self, request: linkage_pb2.PublishRequest) -> list[StoredEncoding]:
        """The batch's encodings, or every problem with it (nothing of a bad batch is kept)."""
        problems: list[FieldViolation] = []
        if not KEY_ID.fullmatch(request.key_id):
            problems.append(FieldViolation("key_id", "must be a linkage key id ('<epoch>:<hex>')"))
        if len(request.upserts) + len(request.removals) > MAX_BATCH:
            problems.append(
                FieldViolation("upserts", f"a batch holds at most {MAX_BATCH} encodings and removals")
            )
        oldest = self._today() - dt.timedelta(days=self._terms.lookback_days + 1)
        newest = self._today() + dt.timedelta(days=1)
        out = []
        for i, e in enumerate(request.upserts):
            where = f"upserts[{i}]"
            if not TOKEN.fullmatch(e.token):
                problems.append(FieldViolation(f"{where}.token", "must be 32 hex digits"))
            if len(e.bloom) != self._encoded_bytes:
                problems.append(FieldViolation(f"{where}.bloom", f"must be {self._encoded_bytes} bytes"))
            if not DIGEST.fullmatch(e.digest):
                problems.append(FieldViolation(f"{where}.digest", "must be 64 hex digits"))
            if not 0 < len(e.activity) <= MAX_ACTIVITY:
                problems.append(FieldViolation(f"{where}.activity", f"must hold 1 to {MAX_ACTIVITY} items"))
            events = []
            for j, a in enumerate(e.activity[:MAX_ACTIVITY]):
                try:
                    day = dt.date.fromisoformat(a.date) if len(a.date) == 10 else None
                except ValueError:
                    day = None
                if day is None or not oldest <= day <= newest:
                    problems.append(
                        FieldViolation(
                            f"{where}.activity[{j}].date",
                            f"must be a YYYY-MM-DD date within the agreement's look-back of "
                            f"{self._terms.lookback_days} days",
                        )
                    )
                elif not CATEGORY.fullmatch(a.category):
                    problems.append(
                        FieldViolation(f"{where}.activity[{j}].category", "must be a category id")
                    )
                else:
                    events.append((day, a.category))
            out.append(StoredEncoding(request.agency_id, e.token, bytes(e.bloom), e.digest, tuple(events)))
        for i, token in enumerate(request.removals):
            if not TOKEN.fullmatch(token):
                problems.append(FieldViolation(f"removals[{i}]", "must be 32 hex digits"))
        if problems:
            raise InvalidRequestError(problems[:50])
        return out

    @maps_errors
    async def Publish(
        self,
        request: linkage_pb2.PublishRequest,
        context: grpc.aio.ServicerContext[linkage_pb2.PublishRequest, linkage_pb2.PublishResponse],
    ) -> linkage_pb2.PublishResponse:
        self._require_publisher(context, request.agency_id)
        upserts = self._encodings(request)
        held, removed = await asyncio.to_thread(
            self._store.apply,
            request.agency_id,
            request.key_id,
            upserts,
            list(request.removals),
            request.retire_other_keys,
            self._clock(),
        )
        await self._audit(
            "encodings-published",
            agency=request.agency_id,
            key_id=request.key_id,
            upserts=len(upserts),
            removals=len(request.removals),
            removed=removed,
            held=held,
            last=request.last,
        )
        log.info(
            "%s published %d encoding(s), removed %d; %d held", request.agency_id, len(upserts), removed, held
        )
        if request.last:
            self.relink_soon()
        return linkage_pb2.PublishResponse(held=held, removed=removed)

    # Linking.

    def relink_soon(self) -> None:
        """Links again once publications have stopped ending for [linkage] relink_after_seconds."""
        if self._relink_soon is not None:
            self._relink_soon.cancel()

        async def later() -> None:
            await asyncio.sleep(self._config.linkage.relink_after_seconds)
            try:
                await self.relink()
            except Exception as error:  # the next publication tries again; the last result stays
                log.error("linking failed: %s", type(error).__name__)

        self._relink_soon = asyncio.create_task(later())

    async def relink(self) -> Linked | None:
        """Deletes encodings out of the look-back window, links those under the newest key, and ranks the
        candidates. The previous result answers until this one is ready."""
        async with self._linking:
            today = self._today()
            expired = await asyncio.to_thread(
                self._store.expire, today - dt.timedelta(days=self._terms.lookback_days)
            )
            groups = await asyncio.to_thread(self._store.by_key)
            if not groups:
                self.linked = None
                return None
            key_id = max(groups, key=epoch_of)
            stored = groups[key_id]
            linked = await asyncio.to_thread(self._link, key_id, stored, today)
            self.linked = linked
            await self._audit(
                "encodings-linked",
                key_id=key_id,
                encodings=linked.encodings,
                candidates=len(linked.candidates),
                expired=expired,
                other_keys=sorted(k for k in groups if k != key_id),
            )
            log.info(
                "linked %d encoding(s) of %d agencies: %d candidate(s)",
                len(stored),
                len(linked.encodings),
                len(linked.candidates),
            )
            return linked

    def _link(self, key_id: str, stored: list[StoredEncoding], today: dt.date) -> Linked:
        terms = self._terms
        entities = link(
            [EncodedRecord(e.agency, e.token, e.bloom) for e in stored],
            LinkParams(threshold=self._config.linkage.threshold),
        )
        activity = {Member(e.agency, e.token): e.activity for e in stored}
        rules = ReviewRules(
            min_agencies=terms.min_agencies,
            window_days=terms.window_days,
            always_review=frozenset(terms.always_review),
        )
        candidates = review_candidates(
            entities,
            {m: [ActivityEvent(d, c) for d, c in events] for m, events in activity.items()},
            today,
            epoch_of(key_id),
            rules,
        )
        counts = dict(Counter(e.agency for e in stored))
        return Linked(key_id, self._clock(), tuple(candidates), encodings=counts, activity=activity)

    # Reading (the broker).

    def _agency_rows(self, linked: Linked, candidate: ReviewCandidate) -> list[linkage_pb2.AgencyActivity]:
        since = self._today() - dt.timedelta(days=self._terms.window_days)
        rows = []
        for agency in sorted({m.agency for m in candidate.members}):
            events = sorted(
                (e for m in candidate.members if m.agency == agency for e in linked.activity.get(m, ())),
                reverse=True,
            )
            recent = [(d, c) for d, c in events if d >= since]
            if not recent:
                continue
            rows.append(
                linkage_pb2.AgencyActivity(
                    agency_id=agency,
                    latest_activity_date=recent[0][0].isoformat(),
                    categories=list(dict.fromkeys(c for _, c in recent)),
                    activity_count=len(recent),
                )
            )
        return rows

    @maps_errors
    async def ListCandidates(
        self,
        request: linkage_pb2.ListCandidatesRequest,
        context: grpc.aio.ServicerContext[
            linkage_pb2.ListCandidatesRequest, linkage_pb2.ListCandidatesResponse
        ],
    ) -> linkage_pb2.ListCandidatesResponse:
        self._require_broker(context)
        linked = self.linked
        if linked is None:
            return linkage_pb2.ListCandidatesResponse()
        limit = min(request.limit or self._config.linkage.max_candidates, self._config.linkage.max_candidates)
        chosen = linked.candidates[:limit]
        await self._audit(
            "candidates-listed", key_id=linked.key_id, candidates=[c.candidate_id for c in chosen]
        )
        return linkage_pb2.ListCandidatesResponse(
            candidates=[
                linkage_pb2.LinkedCandidate(
                    candidate_id=c.candidate_id,
                    priority=c.score,
                    reasons=list(c.reasons),
                    agencies=self._agency_rows(linked, c),
                )
                for c in chosen
            ],
            linked_at=timestamp(linked.at),
            key_id=linked.key_id,
            encodings=linked.encodings,
        )

    @maps_errors
    async def CandidateMembers(
        self,
        request: linkage_pb2.CandidateMembersRequest,
        context: grpc.aio.ServicerContext[
            linkage_pb2.CandidateMembersRequest, linkage_pb2.CandidateMembersResponse
        ],
    ) -> linkage_pb2.CandidateMembersResponse:
        self._require_broker(context)
        linked = self.linked
        candidate = linked.candidate(request.candidate_id) if linked is not None else None
        if linked is None or candidate is None:
            raise NotFoundError(
                "no such review candidate: the agencies' encodings may have been linked again since it was "
                "listed; list the candidates again"
            )
        await self._audit(
            "candidate-members-released",
            candidate_id=candidate.candidate_id,
            review_id=request.review_id[:64],
            agencies=sorted({m.agency for m in candidate.members}),
        )
        return linkage_pb2.CandidateMembersResponse(
            key_id=linked.key_id,
            members=[
                linkage_pb2.CandidateMember(agency_id=m.agency, token=m.token) for m in candidate.members
            ],
        )


class LinkageServer:
    """A bound linkage service, its store and its audit log."""

    def __init__(
        self,
        server: grpc.aio.Server,
        servicer: LinkageServicer,
        health: HealthServicer,
        store: Store,
        recorder: Recorder | None,
        grace: float,
    ) -> None:
        self.server = server
        self.servicer = servicer
        self._health = health
        self._store = store
        self._recorder = recorder
        self.grace = grace
        self._every: asyncio.Task[None] | None = None

    async def start(self) -> None:
        await self.server.start()
        if self._recorder is not None:
            await self._recorder.start()
        await self.servicer.relink()
        self._every = asyncio.create_task(self._hourly())

    async def reload(self, config: LinkageServiceConfig) -> str:
        """Re-verifies the agreement and links again under it (SIGHUP). Returns what changed, in words.

        Raises:
            ConfigError, AgreementRefusedError: the new agreement cannot be used; nothing changed.
        """
        before = self.servicer.trusted
        trusted = _trusted(config)
        if trusted.digest != before.digest and self._recorder is not None:
            label = f"{trusted.agreement.id} v{trusted.agreement.version}"
            await self._recorder.record("agreement-loaded", {"agreement": label, "digest": trusted.digest})
        self.servicer.adopt(trusted)
        await self.servicer.relink()
        if trusted.digest == before.digest:
            return "nothing changed (linked again)"
        return (
            f"agreement {before.agreement.id} v{before.agreement.version} -> "
            f"{trusted.agreement.id} v{trusted.agreement.version} (linked again)"
        )

    async def _hourly(self) -> None:
        """Links again every hour, so the window moves on and expired encodings go, even without news."""
        while True:
            await asyncio.sleep(3600)
            try:
                await self.servicer.relink()
            except Exception as error:
                log.error("linking failed: %s", type(error).__name__)

    async def stop(self, grace: float | None = 1.0) -> None:
        self._health.enter_graceful_shutdown()
        if self._every is not None:
            self._every.cancel()
        await self.server.stop(grace)
        if self._recorder is not None:
            await self._recorder.stop()
        await asyncio.to_thread(self._store.close)

    async def wait_for_termination(self) -> None:
        await self.server.wait_for_termination()


def _trusted(config: LinkageServiceConfig) -> TrustedAgreement:
    """The agreement, signed by every party whose agency publishes."""
    path = Path(config.policy.agreement)
    agreement, _ = load_agreement(path)
    if agreement.linkage is None:
        raise ConfigError(f"{path}: the agreement has no [linkage] section: proactive identification is off")
    return load_trusted(path, governs=agreement.linkage.agencies, trusted_keys=config.policy.trusted_keys)


async def create_server(
    config: LinkageServiceConfig, address: str | None = None, *, insecure_dev: bool = False
) -> tuple[LinkageServer, int]:
    """Builds a bound, not yet started, linkage service.

    Raises:
        ConfigError: the agreement has no [linkage] section, the certificate is not the service the agreement
            names, or the store cannot be opened.
        AgreementRefusedError: the agreement is not signed by every party whose agency publishes, or is not in
            force.
    """
    trusted = _trusted(config)
    terms = trusted.agreement.linkage
    assert terms is not None
    tls = Tls(config.tls) if config.tls is not None and not insecure_dev else None
    if tls is not None and tls.identity.uri != terms.service:
        raise ConfigError(
            f"tls.cert: this certificate is {tls.identity.uri}, not the linkage service the agreement names "
            f"({terms.service})"
        )
    store = Store(config.store.url)
    label = f"{trusted.agreement.id} v{trusted.agreement.version}"
    try:
        recorder = await open_recorder(
            config.audit,
            insecure_dev=insecure_dev,
            what="linkage service",
            agreement=label,
            digest=trusted.digest,
        )
    except BaseException:
        store.close()
        raise
    options = [o for o in server_options() if o[0] != "grpc.max_receive_message_length"]
    server = grpc.aio.server(options=[*options, ("grpc.max_receive_message_length", _MAX_MESSAGE)])
    servicer = LinkageServicer(config, trusted, store, tls, recorder)
    linkage_pb2_grpc.add_LinkageServicer_to_server(servicer, server)
    health = add_standard_services(server, [SERVICE_NAME])
    try:
        port = bind(
            server,
            address or config.linkage.listen,
            insecure_dev=insecure_dev,
            what="linkage service",
            credentials=tls.server_credentials() if tls is not None else None,
            production=trusted.agreement.agreement.deployment == "production",
        )
    except BaseException:
        store.close()
        if recorder is not None:
            recorder.log.close()
        raise
    return LinkageServer(server, servicer, health, store, recorder, config.linkage.shutdown_grace_s), port
