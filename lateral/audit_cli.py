"""`lateral audit`: keys, verification, and the auditors' reading tools (every read is itself logged)."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import click

from lateral.console import err_console, fail, load

_FILE = click.Path(path_type=Path, dir_okay=False)


@click.group()
def audit() -> None:
    """The tamper-evident audit logs of the broker and the adapters.

    \b
    lateral audit keygen --dir keys/broker              a service's log signing and pseudonym keys
    lateral audit keygen --dir keys/auditors --auditor  the auditors' key pair (keep auditor.key safe)
    lateral audit verify --url sqlite:///audit.db --public-key keys/broker/log-signing.pub
    lateral audit list --config broker.toml --reader a.auditor --user j.smith
    lateral audit export --config broker.toml --reader a.auditor --out bundle.json
    """


@audit.command("keygen")
@click.option("--dir", "folder", type=click.Path(path_type=Path, file_okay=False), required=True)
@click.option("--auditor", is_flag=True, help="Make the auditors' X25519 key pair instead.")
def keygen(folder: Path, auditor: bool) -> None:
    """Create a service's audit keys (or, with --auditor, the auditors' key pair)."""
    from audit.keys import generate_auditor_keys, generate_service_keys

    folder.mkdir(parents=True, exist_ok=True)
    if auditor:
        generate_auditor_keys(folder)
        err_console.print(f"Wrote {folder}/auditor.key (owner-only: auditors only) and {folder}/auditor.pub")
    else:
        generate_service_keys(folder)
        err_console.print(
            f"Wrote {folder}/log-signing.key, log-signing.pub and pseudonym.key (keys owner-only)"
        )


@audit.command("verify")
@click.option("--url", default="", help="The log's database URL.")
@click.option(
    "--public-key", type=_FILE, default=None, help="The service's log-signing.pub (with --url or --bundle)."
)
@click.option("--bundle", type=_FILE, default=None, help="An export bundle, verified offline.")
def verify_command(url: str, public_key: Path | None, bundle: Path | None) -> None:
    """Recompute the tree and check every event, payload, checkpoint and proof. Exit 1 naming the first bad
    sequence number. A bundle carries its own key: give --public-key to check it is the service's (without
    it, the key's fingerprint is printed to compare by other means)."""
    from audit.keys import read_public_signing_key
    from audit.rotation import fingerprint, key_text
    from audit.verify import BundleError, bundle_key, verify_bundle, verify_log

    if bundle is not None:
        try:
            data = json.loads(bundle.read_bytes())
            result = verify_bundle(data)
        except BundleError as error:
            fail(f"{bundle}: {error}", 2)
        except (ValueError, RecursionError):  # not UTF-8, not JSON, or nested absurdly deep
            fail(f"{bundle}: not an audit bundle: not JSON", 2)
        carried = bundle_key(data)
        if public_key is None:
            click.echo(
                f"the bundle is verified against the key it carries, fingerprint {fingerprint(carried)}: "
                "give --public-key to check that it is the service's"
            )
        elif key_text(carried) != key_text(load(read_public_signing_key, public_key)):
            click.echo(
                f"BAD: the bundle is signed by another key (fingerprint {fingerprint(carried)}) than "
                f"{public_key}: it may have been re-signed throughout"
            )
            sys.exit(1)
    elif url and public_key is not None:
        result = verify_log(url, load(read_public_signing_key, public_key))
    else:
        fail("give --url and --public-key, or --bundle", 2)
    for problem in result.problems:
        click.echo(f"BAD: {problem}")
    summary = (
        f"{result.size} events, {result.checkpoints} checkpoints, {result.payloads_removed} payloads removed "
        "after retention"
    )
    if result.ok:
        click.echo(f"verified: {summary}")
        return
    click.echo(f"NOT VERIFIED: first bad event {result.first_bad_seq}; {summary}")
    sys.exit(1)


def _reading(config_path: Path, reader: str, what: str, details: dict[str, Any]) -> tuple[str, Any]:
    """The log's URL and keys from a service configuration, after recording that reader read it."""
    from audit.keys import AuditSection, load_keys
    from audit.store import AuditLog, AuditUnavailableError
    from lateral.config import read_toml

    data = read_toml(config_path)
    if "audit" not in data:
        fail(f"{config_path}: has no [audit] section", 2)
    section = load(lambda p: AuditSection(**data["audit"]).resolved(p.parent), config_path)
    keys = load(lambda _: load_keys(section), config_path)
    try:
        log = AuditLog(section.url, keys.signer)
        log.append("audit-read", {"reader": reader, "action": what, **details})
        log.close()
    except AuditUnavailableError as error:
        fail(f"reading is logged, and the log cannot be written: {error}", 3)
    return section.url, keys


_READ = [
    click.option(
        "--config", "config_path", type=_FILE, required=True, help="The service's TOML (its [audit])."
    ),
    click.option("--reader", required=True, help="Who is reading (recorded in the log itself)."),
]


def _read_options(command: Any) -> Any:
    for option in reversed(_READ):
        command = option(command)
    return command


@audit.command("list")
@_read_options
@click.option("--since", default="", help="From this time (ISO, UTC).")
@click.option("--until", default="", help="Before this time (ISO, UTC).")
@click.option("--kind", default="", help="check-received, check-completed, check-denied, disclosure, ...")
@click.option("--organisation", default="")
@click.option("--user", default="")
@click.option("--purpose", default="")
@click.option("--agency", default="")
@click.option("--case-ref", default="")
@click.option("--outcome", default="", help="KNOWN, NOT_KNOWN, POSSIBLE, WITHHELD, DENIED, ...")
@click.option("--pseudonym", default="", help="A subject pseudonym.")
@click.option("--auditor-key", type=_FILE, default=None, help="Open sealed subject details with it.")
@click.option(
    "--subject-family-name",
    default="",
    help="Only checks on people of this family name (needs --auditor-key).",
)
def list_command(
    config_path: Path, reader: str, auditor_key: Path | None, subject_family_name: str, **filters: str
) -> None:
    """List events (as JSON lines), filtered."""
    from audit.reader import Filters, read_events

    if subject_family_name and auditor_key is None:
        fail("--subject-family-name opens sealed subject details: give --auditor-key", 2)
    details = {k: v for k, v in filters.items() if v} | (
        {"subject": "(by name)"} if subject_family_name else {}
    )
    url, _ = _reading(config_path, reader, "list", details)
    for event in read_events(url, Filters(**filters)):
        shown = _shown(event, auditor_key)
        if subject_family_name:
            sealed = shown["payload"].get("sealed")
            family = sealed.get("subject", {}).get("familyName", "") if isinstance(sealed, dict) else ""
            if family.casefold() != subject_family_name.casefold():
                continue
        click.echo(json.dumps(shown, ensure_ascii=False))


@audit.command("show")
@_read_options
@click.argument("seq", type=int)
@click.option("--auditor-key", type=_FILE, default=None, help="Open sealed subject details with it.")
def show(config_path: Path, reader: str, seq: int, auditor_key: Path | None) -> None:
    """Show one event, subject details opened with the auditors' key."""
    from audit.reader import read_events

    url, _ = _reading(config_path, reader, "show", {"seq": seq})
    found = [e for e in read_events(url) if e.seq == seq]
    if not found:
        fail(f"no event {seq}", 1)
    click.echo(json.dumps(_shown(found[0], auditor_key), indent=2, ensure_ascii=False))


def _shown(event: Any, auditor_key: Path | None) -> dict[str, Any]:
    payload = dict(event.payload or {})
    if auditor_key is not None and "sealed" in payload:
        from audit.keys import read_auditor_key
        from audit.sealing import unseal

        payload["sealed"] = json.loads(unseal(load(read_auditor_key, auditor_key), payload["sealed"]))
    return {"seq": event.seq, "at": event.at, "kind": event.kind, "payload": payload}


@audit.command("export")
@_read_options
@click.option("--out", type=_FILE, required=True, help="The bundle to write (JSON).")
def export(config_path: Path, reader: str, out: Path) -> None:
    """A self-contained bundle (events, payloads, checkpoints, proofs, public key) that `verify --bundle`
    checks offline."""
    from audit.reader import export_bundle

    url, keys = _reading(config_path, reader, "export", {})
    out.write_text(json.dumps(export_bundle(url, keys.signer.public_key()), indent=1))
    err_console.print(f"Wrote {out}")


@audit.command("report")
@_read_options
@click.option("--since", default="")
@click.option("--until", default="")
def report_command(config_path: Path, reader: str, since: str, until: str) -> None:
    """Volumes per user and organisation, out-of-hours checks, repeated checks on one subject by one user,
    denials (JSON)."""
    from audit.reader import Filters, read_events, report

    url, _ = _reading(config_path, reader, "report", {"since": since, "until": until})
    click.echo(json.dumps(report(read_events(url, Filters(since=since, until=until))), indent=2))


@audit.command("reconcile")
@click.option("--broker", "broker_url", required=True, help="The broker's log URL.")
@click.option("--agency", "agencies", multiple=True, required=True, help="AGENCY=URL of its log; repeat.")
def reconcile_command(broker_url: str, agencies: tuple[str, ...]) -> None:
    """Match the broker's log with each agency's by check id. Exit 1 when one side has what the other lacks
    (a check an agency answered that the broker never recorded is the worrying kind)."""
    from audit.reconcile import reconcile

    urls = {}
    for item in agencies:
        agency, _, url = item.partition("=")
        if not url:
            fail(f"--agency {item!r}: give AGENCY=URL", 2)
        urls[agency] = url
    result = reconcile(broker_url, urls)
    for agency, check in result.missing_at_agency:
        click.echo(f"asked by the broker, not recorded by {agency}: check {check}")
    for agency, check in result.unknown_to_broker:
        click.echo(f"recorded by {agency}, unknown to the broker: check {check}")
    click.echo(f"{result.checks} agency answers reconciled: " + ("all match" if result.ok else "MISMATCHES"))
    sys.exit(0 if result.ok else 1)


@audit.command("countersign")
@_read_options
@click.option("--bundle", type=_FILE, required=True, help="The broker's export bundle.")
@click.option("--broker-key", type=_FILE, required=True, help="The broker's log-signing.pub.")
def countersign_command(config_path: Path, reader: str, bundle: Path, broker_key: Path) -> None:
    """As an agency: verify the broker's exported log and countersign its latest checkpoint in the agency's
    own log, refusing if it is not consistent with the one countersigned before. Exit 1 when refused."""
    from audit.countersign import CountersignError, countersign
    from audit.keys import read_public_signing_key
    from audit.store import AuditLog

    url, keys = _reading(config_path, reader, "countersign", {"bundle": bundle.name})
    log = AuditLog(url, keys.signer)
    try:
        done = countersign(
            json.loads(bundle.read_text()), load(read_public_signing_key, broker_key), log, url
        )
    except CountersignError as error:
        fail(f"not countersigned: {error}", 1)
    finally:
        log.close()
    click.echo(
        f"countersigned the broker's checkpoint at {done.tree_size} events"
        + (f", consistent with the one at {done.previous_size}" if done.previous_size else "")
    )


@audit.command("prune")
@_read_options
def prune_command(config_path: Path, reader: str) -> None:
    """Delete payloads older than the agreement's retention period (the service's [policy] agreement).
    Events, signatures and proofs stay and still verify."""
    from audit.retention import prune
    from audit.store import AuditLog
    from lateral.config import read_toml
    from policy.agreement import load_agreement

    data = read_toml(config_path)
    agreement_path = config_path.parent / str(data.get("policy", {}).get("agreement", ""))
    agreement, _ = load(load_agreement, agreement_path)
    url, keys = _reading(config_path, reader, "prune", {"retention_days": agreement.agreement.retention_days})
    log = AuditLog(url, keys.signer)
    try:
        removed = prune(log, agreement.agreement.retention_days)
    finally:
        log.close()
    click.echo(f"removed {removed} payloads older than {agreement.agreement.retention_days} days")
