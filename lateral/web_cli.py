"""`lateral web`: serve the MASH web page, and manage its local accounts."""

from __future__ import annotations

import asyncio
import signal
import sys
from pathlib import Path

import click
import tomli_w

from lateral.config import ConfigError, read_toml
from lateral.console import err_console, fail, load

_FILE = click.Path(path_type=Path, dir_okay=False)


@click.group()
def web() -> None:
    """The web page for MASH staff (and auditors)."""


@web.command("serve")
@click.option("--config", "config_path", type=_FILE, required=True, help="web.toml")
@click.option("--insecure-dev", is_flag=True, help="Ask the broker in plaintext (development only).")
def serve(config_path: Path, insecure_dev: bool) -> None:
    """Serve the web page until interrupted."""
    from lateral.asgi import AsgiServer
    from lateral.rpc import warn_insecure
    from pki.tls import Tls
    from web.accounts import load_accounts
    from web.app import WebSettings, create_web_app
    from web.config import load_web_config

    config = load(load_web_config, config_path)
    if config.tls is None and not insecure_dev:
        fail(
            f"{config_path}: no [tls]: the web page asks the broker as a case system with its certificate", 2
        )
    if insecure_dev:
        warn_insecure("web page")
    settings = WebSettings(
        broker=config.broker,
        tls=None if insecure_dev or config.tls is None else load(lambda _: Tls(config.tls), config_path),  # type: ignore[arg-type]
        accounts=load(load_accounts, Path(config.accounts)),
        session_secret=Path(config.session_secret_file).read_text().strip(),
        organisation=config.organisation,
        https=config.https,
        audit=config.audit,
        auditor_key=Path(config.auditor_key) if config.auditor_key else None,
    )

    async def run() -> None:
        server = AsgiServer(create_web_app(settings), config.listen, None)
        await server.start()
        print(f"web page listening on {server.url}", file=sys.stderr, flush=True)
        stop = asyncio.Event()
        for sig in (signal.SIGINT, signal.SIGTERM):
            asyncio.get_running_loop().add_signal_handler(sig, stop.set)
        await stop.wait()
        await server.stop()

    try:
        asyncio.run(run())
    except OSError as error:
        fail(str(error), 1)


@web.command("add-user")
@click.option(
    "--accounts", "accounts_path", type=_FILE, required=True, help="The accounts file (created if new)."
)
@click.option("--username", required=True)
@click.option("--name", required=True, help="As shown on the page.")
@click.option("--role", required=True, help="The role the agreement names, or auditor.")
@click.password_option(help="Asked for when not given.")
def add_user(accounts_path: Path, username: str, name: str, role: str, password: str) -> None:
    """Add (or replace) a local account; the password is stored as an Argon2id hash."""
    from web.accounts import Account, Accounts, hash_password

    data = read_toml(accounts_path) if accounts_path.exists() else {"accounts": []}
    try:
        account = Account(username=username, name=name, role=role, password_hash=hash_password(password))
    except ValueError as error:
        fail(str(error).splitlines()[0], 2)
    kept = [a for a in data.get("accounts", []) if a.get("username") != username]
    try:
        Accounts.model_validate({"accounts": [*kept, account.model_dump()]})
    except ValueError as error:
        raise ConfigError(str(error)) from None
    accounts_path.write_text(tomli_w.dumps({"accounts": [*kept, account.model_dump()]}))
    accounts_path.chmod(0o600)
    err_console.print(f"{username} ({role}) saved in {accounts_path}")
