"""The demo's web page: two demo sign-ins (a MASH manager, a social worker), served on 127.0.0.1 and
calling the broker with the council web page's own client certificate."""

from __future__ import annotations

import secrets
from pathlib import Path

import tomli_w

from audit.keys import AuditSection
from lateral.asgi import AsgiServer
from pki.tls import Tls, TlsSection
from web.accounts import hash_password, load_accounts
from web.app import WebSettings, create_web_app

# Demo sign-ins, printed by the demo: synthetic people only, on a developer's machine.
DEMO_USERS = {
    "manager": ("Morgan Ash (demo)", "mash-manager", "demo-manager"),
    "worker": ("Sam Reed (demo)", "mash-social-worker", "demo-worker"),
    "auditor": ("Alex Audit (demo)", "auditor", "demo-auditor"),
}


def write_demo_accounts(folder: Path) -> Path:
    path = folder / "web-accounts.toml"
    accounts = [
        {"username": u, "name": name, "role": role, "password_hash": hash_password(password)}
        for u, (name, role, password) in DEMO_USERS.items()
    ]
    path.write_text(tomli_w.dumps({"accounts": accounts}))
    return path


async def start_demo_web(
    folder: Path,
    broker: str,
    tls: TlsSection | None,
    organisation: str,
    audit: AuditSection | None = None,
) -> AsgiServer:
    settings = WebSettings(
        broker=broker,
        tls=Tls(tls) if tls is not None else None,
        accounts=load_accounts(write_demo_accounts(folder)),
        session_secret=secrets.token_urlsafe(32),
        organisation=organisation,
        https=False,
        audit=audit,
        auditor_key=folder / "audit" / "auditor.key" if audit is not None else None,
    )
    server = AsgiServer(create_web_app(settings), "127.0.0.1:0", None)
    await server.start()
    return server
