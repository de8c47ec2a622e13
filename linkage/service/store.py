"""Where the linkage service keeps the encodings agencies publish (SQLAlchemy: SQLite by default).

A row is one agency's encoding of one record under one key: the token only that agency can resolve, the
hardened Bloom filter, the digest its publisher computed, and the activity published with it. Nothing in
it names anyone. Encodings whose latest activity falls out of the agreement's look-back window are
deleted, as are an agency's encodings under an older key once it publishes under a new one.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import sqlalchemy as sa

from lateral.config import ConfigError

_metadata = sa.MetaData()
encodings = sa.Table(
    "linkage_encodings",
    _metadata,
    sa.Column("agency_id", sa.String(64), primary_key=True),
    sa.Column("key_id", sa.String(64), primary_key=True),
    sa.Column("token", sa.String(64), primary_key=True),
    sa.Column("bloom", sa.LargeBinary, nullable=False),
    sa.Column("digest", sa.String(128), nullable=False),
    # JSON: [["YYYY-MM-DD", "category"], ...]
    sa.Column("activity", sa.Text, nullable=False),
    # The latest activity date (YYYY-MM-DD), for deleting what leaves the look-back window.
    sa.Column("latest", sa.String(10), nullable=False, index=True),
    sa.Column("published_at", sa.DateTime(timezone=True), nullable=False),
)


@dataclass(frozen=True)
class StoredEncoding:
    agency: str
    token: str
    bloom: bytes
    digest: str
    activity: tuple[tuple[dt.date, str], ...]

    @property
    def latest(self) -> dt.date:
        return max(day for day, _ in self.activity)


class Store:
    """The encodings, behind a SQLAlchemy engine. Calls are blocking: the service runs them in a thread."""

    def __init__(self, url: str) -> None:
        try:
            self._engine = sa.create_engine(url, pool_pre_ping=True)
            _metadata.create_all(self._engine)
        except (sa.exc.ArgumentError, sa.exc.OperationalError, ImportError) as error:
            raise ConfigError(
                f"store.url: cannot open the encodings' database: {type(error).__name__}"
            ) from None

    def close(self) -> None:
        self._engine.dispose()

    def holdings(self, agency: str, key_id: str) -> dict[str, str]:
        """token -> digest of what the agency holds here under the key."""
        query = sa.select(encodings.c.token, encodings.c.digest).where(
            encodings.c.agency_id == agency, encodings.c.key_id == key_id
        )
        with self._engine.connect() as conn:
            return {str(token): str(digest) for token, digest in conn.execute(query)}

    def apply(
        self,
        agency: str,
        key_id: str,
        upserts: Sequence[StoredEncoding],
        removals: Iterable[str],
        retire_other_keys: bool,
        now: dt.datetime,
    ) -> tuple[int, int]:
        """Applies one publication batch in one transaction.

        Returns:
            How many encodings the agency now holds under the key, and how many were removed.
        """
        of_agency = encodings.c.agency_id == agency
        mine = sa.and_(of_agency, encodings.c.key_id == key_id)
        removed = 0
        with self._engine.begin() as conn:
            if retire_other_keys:
                older = sa.delete(encodings).where(of_agency, encodings.c.key_id != key_id)
                removed += conn.execute(older).rowcount
            # Removals are counted; an upsert's old row is replaced, not removed.
            for tokens, counted in ((list(removals), True), ([e.token for e in upserts], False)):
                for start in range(0, len(tokens), 500):
                    chunk = tokens[start : start + 500]
                    deleted = conn.execute(sa.delete(encodings).where(mine, encodings.c.token.in_(chunk)))
                    removed += deleted.rowcount if counted else 0
            if upserts:
                conn.execute(
                    sa.insert(encodings),
                    [
                        {
                            "agency_id": agency,
                            "key_id": key_id,
                            "token": e.token,
                            "bloom": e.bloom,
                            "digest": e.digest,
                            "activity": json.dumps([[d.isoformat(), c] for d, c in e.activity]),
                            "latest": e.latest.isoformat(),
                            "published_at": now,
                        }
                        for e in upserts
                    ],
                )
            held = conn.execute(sa.select(sa.func.count()).select_from(encodings).where(mine)).scalar_one()
        return int(held), removed

    def expire(self, before: dt.date) -> int:
        """Deletes every encoding whose latest activity is before the date (out of the look-back window)."""
        with self._engine.begin() as conn:
            result = conn.execute(sa.delete(encodings).where(encodings.c.latest < before.isoformat()))
            return int(result.rowcount)

    def by_key(self) -> dict[str, list[StoredEncoding]]:
        """Every encoding, grouped by the key it was made under."""
        out: dict[str, list[StoredEncoding]] = {}
        columns = (
            encodings.c.key_id,
            encodings.c.agency_id,
            encodings.c.token,
            encodings.c.bloom,
            encodings.c.digest,
            encodings.c.activity,
        )
        with self._engine.connect() as conn:
            for key_id, agency, token, bloom, digest, activity in conn.execute(sa.select(*columns)):
                events = tuple((dt.date.fromisoformat(d), c) for d, c in json.loads(activity))
                out.setdefault(key_id, []).append(StoredEncoding(agency, token, bytes(bloom), digest, events))
        return out
