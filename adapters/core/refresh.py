"""Keeping the index fresh without ever blocking a query.

Every few seconds the adapter reads the rows whose change watermark has moved (person rows and activity
rows), re-reads those people whole, builds a small index of them and merges it into a new index, which
then replaces the old one in a single assignment. A query in flight finishes on the index it started
with. Deletions leave no watermark, so a full rebuild runs now and then as well.
"""

from __future__ import annotations

import asyncio
import dataclasses
import datetime as dt
import logging
from collections.abc import Callable
from dataclasses import dataclass

from adapters.core.builder import IndexBuilder
from adapters.core.config import AdapterConfig
from adapters.core.index import MatchIndex, merge
from adapters.core.source import read_changes, read_source
from lateral.config import ConfigError

log = logging.getLogger(__name__)


def build_index(
    config: AdapterConfig, progress: Callable[[str, int], None] = lambda stage, n: None
) -> MatchIndex:
    """Reads the agency database (streaming) and builds the match index."""
    builder = IndexBuilder(progress)
    read_source(config, builder)
    return builder.finish()


@dataclass(frozen=True)
class Refreshed:
    index: MatchIndex
    changed: int
    full: bool


def refresh_index(config: AdapterConfig, index: MatchIndex) -> Refreshed:
    """Applies the changes since the index's watermarks; a full rebuild when the mapping has no watermark."""
    if not index.watermarks:
        return Refreshed(build_index(config), index.record_count, True)
    builder = IndexBuilder()
    changed, marks = read_changes(config, dict(index.watermarks), builder)
    now = dt.datetime.now(dt.UTC)
    if not changed:
        return Refreshed(dataclasses.replace(index, refreshed_at=now), 0, False)
    merged = merge(index, builder.finish(), changed)
    merged.watermarks = marks
    merged.refreshed_at = now
    return Refreshed(merged, len(changed), False)


@dataclass(frozen=True)
class SourceStatus:
    """Whether the agency database could be read at the last attempt."""

    ok: bool = True
    since: dt.datetime | None = None
    detail: str = ""
    # The index served is older than [refresh] stale_after_seconds: the adapter no longer answers.
    stale: bool = False


class Refresher:
    """Runs refreshes in a worker thread and hands each new index to `install`, and the source's status to
    `report` whenever it changes (degraded while the database cannot be read; recovered on its own)."""

    def __init__(
        self,
        config: AdapterConfig,
        current: Callable[[], MatchIndex],
        install: Callable[[MatchIndex], None],
        report: Callable[[SourceStatus], None] = lambda status: None,
    ) -> None:
        self._config = config
        self._current = current
        self._install = install
        self._report = report
        self.status = SourceStatus()

    def _set(self, status: SourceStatus) -> None:
        if (status.ok, status.stale) != (self.status.ok, self.status.stale):
            self.status = status
            self._report(status)

    async def run(self) -> None:
        every = self._config.refresh.interval_seconds
        full_every = self._config.refresh.full_rebuild_hours * 3600
        while True:
            await asyncio.sleep(every)
            index = self._current()
            full = (dt.datetime.now(dt.UTC) - index.built_at).total_seconds() >= full_every
            try:
                if full:
                    done = Refreshed(
                        await asyncio.to_thread(build_index, self._config), index.record_count, True
                    )
                else:
                    done = await asyncio.to_thread(refresh_index, self._config, index)
            except Exception as error:
                # The source is unreachable for now: keep serving the index we have, and say so.
                served = index.refreshed_at.isoformat(timespec="seconds")
                detail = str(error) if isinstance(error, ConfigError) else type(error).__name__
                log.warning(
                    "%s: refresh failed, serving the index of %s: %s", self._config.agency.id, served, detail
                )
                now = dt.datetime.now(dt.UTC)
                since = self.status.since if not self.status.ok else now
                stale = (now - index.refreshed_at).total_seconds() >= self._config.refresh.stale_after_seconds
                serving = "not answering: its index of" if stale else "serving the index of"
                self._set(
                    SourceStatus(
                        False,
                        since,
                        f"cannot read the agency database ({detail}); {serving} {served}",
                        stale,
                    )
                )
                continue
            self._set(SourceStatus())
            self._install(done.index)
            if done.changed:
                log.info(
                    "%s: index %s: %d record(s) changed",
                    self._config.agency.id,
                    "rebuilt" if done.full else "refreshed",
                    done.changed,
                )
