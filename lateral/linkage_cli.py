"""`lateral linkage`: the linkage service of proactive identification, and its keys (docs/proactive.md)."""

from __future__ import annotations

from pathlib import Path

import click

from lateral.caller_options import INSECURE_HELP
from lateral.config import ConfigError
from lateral.console import err_console, fail


@click.group()
def linkage() -> None:
    """Proactive identification: the linkage service and the agencies' linkage keys.

    \b
    lateral linkage keygen --out linkage.key --epoch 1     the key the publishing agencies share
    lateral linkage keygen --token --out tokens.key        one agency's own token key
    lateral linkage serve --config linkage.toml            the service (never give it either key)
    """


@linkage.command("keygen")
@click.option("--out", "path", type=click.Path(path_type=Path, dir_okay=False), required=True)
@click.option(
    "--epoch",
    type=click.IntRange(0, 2**32 - 1),
    default=1,
    show_default=True,
    help="The key's epoch: raise it at each rotation (encodings of different epochs never link).",
)
@click.option("--token", is_flag=True, help="Make an agency's own token key instead of the shared key.")
@click.option("--force", is_flag=True, help="Replace an existing file.")
def keygen(path: Path, epoch: int, token: bool, force: bool) -> None:
    """Make a linkage key (owner-only file).

    The shared key goes to every agency that publishes, by a channel the hub does not see, and never to the
    hub or the linkage service. A token key stays with the one agency it was made for.
    """
    from linkage.keyfiles import write_shared_key, write_token_key

    if path.exists() and not force:
        fail(f"{path} exists: pass --force to replace it (encodings made with the old key stop linking)", 2)
    if token:
        write_token_key(path)
        err_console.print(f"Wrote a token key to {path}: it stays with this agency alone.")
        return
    key = write_shared_key(path, epoch)
    err_console.print(
        f"Wrote the linkage key {key.key_id} (epoch {epoch}) to {path}. Give it to every publishing agency "
        "out of band; never to the hub or the linkage service."
    )


@linkage.command("serve")
@click.option("--config", "config_path", type=click.Path(path_type=Path), required=True, help="TOML file.")
@click.option("--listen", help="host:port to listen on (overrides the file).")
@click.option("--insecure-dev", is_flag=True, help=INSECURE_HELP)
def linkage_serve(config_path: Path, listen: str | None, insecure_dev: bool) -> None:
    """Serve the linkage service until interrupted (SIGHUP re-reads the agreement)."""
    import asyncio

    from lateral.console import load, server_logging
    from lateral.lifecycle import serve
    from lateral.rpc import InsecureNotAllowedError
    from linkage.service import create_server, load_linkage_config

    server_logging()
    config = load(load_linkage_config, config_path)
    address = listen or config.linkage.listen
    try:
        asyncio.run(
            serve(
                lambda: create_server(config, address, insecure_dev=insecure_dev),
                lambda: load_linkage_config(config_path),
                "linkage service",
                address,
            )
        )
    except (ConfigError, InsecureNotAllowedError) as error:
        fail(str(error), 2)
    except OSError as error:
        fail(str(error), 1)
