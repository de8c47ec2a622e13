"""Serving an ASGI app (the REST API, the web page) with uvicorn inside the running event loop, over HTTPS
with a service's certificate (plaintext only in development)."""

from __future__ import annotations

import asyncio
import contextlib
import socket

import uvicorn
from fastapi import FastAPI

from pki.tls import TlsSection


class AsgiServer:
    def __init__(
        self, app: FastAPI, listen: str, tls: TlsSection | None, *, reuse_port: bool = False
    ) -> None:
        host, _, port = listen.rpartition(":")
        self._config = uvicorn.Config(
            app,
            host=host or "127.0.0.1",
            port=int(port),
            ssl_certfile=tls.cert if tls is not None else None,
            ssl_keyfile=tls.key if tls is not None else None,
            log_level="warning",
            # uvicorn's own logging would print raw tracebacks (with request data) and access lines (with
            # query strings): its records go through lateral.logs instead, and there are no access lines.
            log_config=None,
            access_log=False,
            lifespan="off",
            server_header=False,
        )
        self.https = tls is not None
        self._reuse_port = reuse_port
        self._server = uvicorn.Server(self._config)
        self._task: asyncio.Task[None] | None = None
        self.port = 0

    async def start(self) -> None:
        # The process's signals are `lateral broker serve`'s to handle, not uvicorn's (stop() ends the API).
        self._server.capture_signals = contextlib.nullcontext  # type: ignore[method-assign,assignment]
        sockets = [_shared_socket(self._config.host, self._config.port)] if self._reuse_port else None
        self._task = asyncio.create_task(self._server.serve(sockets), name="rest api")
        while not self._server.started:
            if self._task.done():
                self._task.result()  # raises what stopped it (e.g. the port is taken)
            await asyncio.sleep(0.01)
        self.port = self._server.servers[0].sockets[0].getsockname()[1]

    @property
    def url(self) -> str:
        return f"{'https' if self.https else 'http'}://{self._config.host}:{self.port}"

    async def stop(self) -> None:
        self._server.should_exit = True
        if self._task is not None:
            with contextlib.suppress(asyncio.CancelledError):
                await self._task


def _shared_socket(host: str, port: int) -> socket.socket:
    """A TCP socket bound with SO_REUSEPORT, for uvicorn to listen on, so that every worker of
    `lateral broker serve --workers N` serves the same REST port (uvicorn has no option for it).

    Raises:
        OSError: the address is taken by a process that does not share it.
    """
    family, kind, proto, _, address = socket.getaddrinfo(
        host.strip("[]"), port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE
    )[0]
    sock = socket.socket(family, kind, proto)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        sock.bind(address)
    except OSError as error:
        sock.close()
        raise OSError(
            f"the REST API cannot listen on {host}:{port}: {error.strerror or type(error).__name__}"
        ) from None
    return sock
