"""Publishing this agency's encodings to the linkage service (proactive identification, docs/proactive.md).

Only while the agency's own copy of the agreement has a [linkage] section naming it. Published: for each
record with activity inside the agreement's look-back window (activity the agency restricts, categories a
restriction hides, and records the agency restricts are left out), a hardened Bloom-filter encoding made with
the key the agencies share (linkage/), a token only this agency can resolve, and the dates and categories of
that activity. Nothing else leaves: no name, date of birth, postcode, record key or NHS number.

A publication sends only what changed since the service last heard (it asks what it holds: Holdings), and
removes what has left the window. The token map of the latest publication stays here, so a review can be
resolved to the record it was published for.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import hashlib
import json
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from adapters.core.index import MatchIndex
from linkage.encoding import encode_many
from linkage.fields import RecordFields
from linkage.keyfiles import read_shared_key, read_token_key
from linkage.keys import LinkageKey, record_token
from pki.tls import Tls
from policy.agreement import Agreement
from protos.lateral.v1 import linkage_pb2

if TYPE_CHECKING:
    from protos.lateral.v1.linkage_pb2_grpc import LinkageAsyncStub

log = logging.getLogger(__name__)

BATCH = 1000
_GENDER_NAMES = {1: "female", 2: "male", 3: "other"}


class PublishError(Exception):
    """A publication could not be made; the message names why (no personal data)."""


@dataclass(frozen=True)
class Publication:
    """One agency's encodings as of one index."""

    key_id: str
    encodings: dict[str, linkage_pb2.Encoding]
    # token -> the record key it stands for (never leaves the agency).
    record_of: dict[str, str]


def token_for(token_key: bytes, key: LinkageKey, record_key: str) -> str:
    """A record's token under a linkage key: a new key gives new tokens, unlinkable to the old."""
    return record_token(token_key, f"{key.key_id}\x00{record_key}")


def _digest(bloom: bytes, activity: list[tuple[str, str]]) -> str:
    return hashlib.sha256(bloom + json.dumps(activity).encode()).hexdigest()


def _date(key: int) -> dt.date | None:
    return dt.date(key // 10_000, key // 100 % 100, key % 100) if key else None


def publication(
    index: MatchIndex,
    key: LinkageKey,
    token_key: bytes,
    today: dt.date,
    lookback_days: int,
    hidden: frozenset[str],
) -> Publication:
    """The encodings of every record with publishable activity in the window ending today."""
    events = index.events
    since, until = (today - dt.timedelta(days=lookback_days)).toordinal(), today.toordinal()
    shown = np.array([c not in hidden for c in events.category_names] or [False], dtype=np.bool_)
    keep = (events.dates >= since) & (events.dates <= until) & ~events.restricted
    if len(events.categories):
        keep &= shown[events.categories]
    owner = np.repeat(np.arange(len(events.offsets) - 1), np.diff(events.offsets))
    rows = [
        int(r)
        for r in np.unique(owner[keep])
        if not index.restricted[r] and not (index.any_deleted and index.deleted[r])
    ]
    fields = [
        RecordFields(
            given_names=index.given[r],
            family_name=index.family[r],
            other_names=tuple(index.aliases.get(r, ())),
            date_of_birth=_date(int(index.dob[r])),
            gender=_GENDER_NAMES.get(int(index.gender[r])),
            postcode=index.postcode[r],
        )
        for r in rows
    ]
    blooms = encode_many(key, fields) if fields else np.zeros((0, 0), dtype=np.uint8)
    encodings: dict[str, linkage_pb2.Encoding] = {}
    record_of: dict[str, str] = {}
    names = events.category_names
    for r, bloom_row in zip(rows, blooms, strict=True):
        activity = sorted(
            (dt.date.fromordinal(int(events.dates[i])).isoformat(), names[events.categories[i]])
            for i in events.of(r)
            if keep[i]
        )
        bloom = bloom_row.tobytes()
        token = token_for(token_key, key, index.keys[r])
        encodings[token] = linkage_pb2.Encoding(
            token=token,
            bloom=bloom,
            activity=[linkage_pb2.Activity(date=d, category=c) for d, c in activity],
            digest=_digest(bloom, activity),
        )
        record_of[token] = index.keys[r]
    return Publication(key.key_id, encodings, record_of)


@dataclass(frozen=True)
class Report:
    """What a publication did (counts only)."""

    published: int
    sent: int
    removed: int


class Publisher:
    """Publishes this agency's encodings to the linkage service, and resolves its tokens for reviews."""

    def __init__(
        self,
        agency: str,
        service: str,
        key_file: Path,
        token_key_file: Path,
        stub: LinkageAsyncStub,
        tls: Tls | None,
    ) -> None:
        self.agency = agency
        self._service = service
        self._key_file, self._token_key_file = key_file, token_key_file
        self._stub = stub
        self._tls = tls
        self.latest: Publication | None = None

    def _check_service(self, expected: str) -> None:
        """The linkage service's certificate must carry the identity the agreement names: encodings go to
        that service and no other, however the address is configured."""
        if self._tls is None:
            return
        try:
            identity = self._tls.server_identity(self._service)
        except OSError as error:
            raise PublishError(
                f"cannot reach the linkage service at {self._service}: {type(error).__name__}"
            ) from None
        if identity is None or identity.uri != expected:
            found = identity.uri if identity is not None else "no federation identity"
            raise PublishError(
                f"the service at {self._service} is {found}, not the linkage service the agreement names "
                f"({expected}): nothing was published"
            )

    async def publish(
        self,
        agreement: Agreement,
        index: MatchIndex,
        today: dt.date,
        hidden: frozenset[str],
        timeout: float = 60.0,
    ) -> Report:
        """One publication: the encodings of this index, sent where they changed.

        Raises:
            PublishError: the agreement does not name this agency, the keys cannot be read, the service is
                not the one the agreement names, or it refused or could not be reached.
        """
        terms = agreement.linkage
        if terms is None or self.agency not in terms.agencies:
            raise PublishError("the agreement's [linkage] does not name this agency: nothing is published")
        try:
            key, token_key = read_shared_key(self._key_file), read_token_key(self._token_key_file)
        except Exception as error:  # ConfigError names the file; never the secret
            raise PublishError(str(error)) from None
        await asyncio.to_thread(self._check_service, terms.service)
        made = await asyncio.to_thread(publication, index, key, token_key, today, terms.lookback_days, hidden)
        self.latest = made
        try:
            held = await self._stub.Holdings(
                linkage_pb2.HoldingsRequest(agency_id=self.agency, key_id=made.key_id), timeout=timeout
            )
            have = {h.token: h.digest for h in held.holdings}
            upserts = [e for t, e in made.encodings.items() if have.get(t) != e.digest]
            removals = [t for t in have if t not in made.encodings]
            items: list[linkage_pb2.Encoding | str] = [*upserts, *removals]
            batches = [items[i : i + BATCH] for i in range(0, len(items), BATCH)] or [[]]
            removed = 0
            for n, batch in enumerate(batches):
                answer = await self._stub.Publish(
                    linkage_pb2.PublishRequest(
                        agency_id=self.agency,
                        key_id=made.key_id,
                        upserts=[e for e in batch if isinstance(e, linkage_pb2.Encoding)],
                        removals=[t for t in batch if isinstance(t, str)],
                        retire_other_keys=n == 0,
                        last=n == len(batches) - 1,
                    ),
                    timeout=timeout,
                )
                removed += answer.removed
        except Exception as error:
            code = getattr(error, "code", None)
            what = code().name if callable(code) else type(error).__name__
            raise PublishError(f"the linkage service at {self._service} answered {what}") from None
        return Report(len(made.encodings), len(upserts), removed)

    def resolve(self, key_id: str, token: str) -> str | None:
        """The record key a token of the latest publication stands for; None when it is not one."""
        latest = self.latest
        if latest is None or latest.key_id != key_id:
            return None
        return latest.record_of.get(token)


async def publish_forever(
    publisher: Publisher,
    state: Callable[[], tuple[Agreement, MatchIndex, dt.date, frozenset[str]]],
    first_after: float,
    every_hours: Callable[[], float],
    report: Callable[[Report | PublishError], Awaitable[None]],
) -> None:
    """Publishes first_after seconds from now, then every [linkage] publish_every_hours of the agreement in
    force at the time; a failed publication is reported and tried again at the next."""
    await asyncio.sleep(first_after)
    while True:
        try:
            outcome: Report | PublishError = await publisher.publish(*state())
        except PublishError as error:
            outcome = error
        await report(outcome)
        await asyncio.sleep(every_hours() * 3600)
