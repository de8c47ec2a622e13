"""A server process's life: start, serve until SIGTERM (or Ctrl-C), reload on SIGHUP, stop gracefully;
telling systemd each step (lateral/systemd.py) and the operator on stderr."""

from __future__ import annotations

import asyncio
import logging
import signal
import sys
from collections.abc import Awaitable, Callable
from typing import Any, Protocol, TypeVar

from lateral import systemd
from lateral.config import ConfigError
from lateral.errors import UnavailableError

log = logging.getLogger(__name__)

C = TypeVar("C")
C_contra = TypeVar("C_contra", contravariant=True)


class Service(Protocol[C_contra]):
    @property
    def grace(self) -> float: ...
    async def start(self) -> None: ...
    async def stop(self, grace: float | None) -> Any: ...
    async def reload(self, config: C_contra) -> str: ...


def _say(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


async def serve(
    create: Callable[[], Awaitable[tuple[Service[C], int]]],
    reread: Callable[[], C],
    what: str,
    address: str,
    *,
    serving: str = "listening on",
) -> None:
    """Runs a service until SIGTERM or SIGINT; on SIGHUP re-reads its configuration (`reread`) and applies
    it. A configuration or agreement that cannot be used is refused and the service goes on as before.

    Once it serves it says "`what` `serving` host:port" on stderr: "broker listening on ...", which tests
    and scripts wait for; a worker of `lateral broker serve --workers N` says something else and leaves
    that line to its supervisor, which says it once every worker serves."""
    server, port = await create()
    await server.start()
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    hangups: asyncio.Queue[None] = asyncio.Queue()
    # Before READY=1: whoever learns that the service serves may send SIGHUP at once, whose default
    # action would end the process.
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    loop.add_signal_handler(signal.SIGHUP, hangups.put_nowait, None)
    _say(f"{what} {serving} {address.rsplit(':', 1)[0]}:{port}")
    systemd.ready(f"serving on port {port}")
    stopping = asyncio.create_task(stop.wait())
    while True:
        hangup = asyncio.create_task(hangups.get())
        await asyncio.wait({stopping, hangup}, return_when=asyncio.FIRST_COMPLETED)
        if stop.is_set():
            hangup.cancel()
            break
        systemd.reloading()
        try:
            summary = await server.reload(await asyncio.to_thread(reread))
        except (ConfigError, UnavailableError) as error:
            text = error.message if isinstance(error, UnavailableError) else str(error)
            log.error("%s: reload refused, still running as before: %s", what, text)
            _say(f"{what} reload refused, still running as before: {text}")
            systemd.ready("reload refused: still running as before")
        else:
            log.info("%s reloaded: %s", what, summary)
            _say(f"{what} reloaded: {summary}")
            systemd.ready(f"reloaded: {summary}")
    systemd.stopping()
    _say(f"{what} stopping (up to {server.grace:g} s for work in flight)")
    await server.stop(server.grace)
    _say(f"{what} stopped")
