"""`lateral dsa`: check, explain, compare, sign and verify data-sharing agreements."""

from __future__ import annotations

import datetime as dt
import sys
from pathlib import Path

import click

from lateral.config import ConfigError
from lateral.console import err_console, fail, load

_FILE = click.Path(path_type=Path, dir_okay=False)


@click.group()
def dsa() -> None:
    """Data-sharing agreements: what they allow, who signed them, what changed.

    \b
    A new party:   lateral dsa keygen dsa.toml --party northshire-police --key police.key
    Each party:    lateral dsa sign dsa.toml --party northshire-police --key police.key
    Anyone:        lateral dsa verify dsa.toml
    """


@dsa.command("check")
@click.argument("path", type=_FILE)
def check(path: Path) -> None:
    """Validate an agreement and say in plain English who may ask whom for what."""
    from policy.agreement import load_agreement
    from policy.signing import read_signatures, signatures_path, verify
    from policy.summary import summary
    from policy.trust import local_today

    agreement, data = load(load_agreement, path)
    statuses = verify(agreement, data, load(read_signatures, signatures_path(path)))
    click.echo(summary(agreement, statuses, local_today(agreement)))


@dsa.command("explain")
@click.argument("path", type=_FILE)
@click.option("--requester", required=True, help="The requesting organisation's party id.")
@click.option("--role", required=True, help="The requester's role.")
@click.option("--purpose", required=True, help="The purpose id.")
@click.option("--agency", "agencies", multiple=True, help="An agency id; repeat for several (default: all).")
@click.option(
    "--subject",
    type=click.Choice(["child", "adult", "unknown"]),
    default="unknown",
    show_default=True,
    help="Whether the person checked is a child or an adult.",
)
@click.option(
    "--at",
    "at",
    type=click.DateTime(["%Y-%m-%dT%H:%M", "%Y-%m-%d %H:%M"]),
    default=None,
    help="When the check is made, local time in the agreement's zone (default: now).",
)
def explain(
    path: Path,
    requester: str,
    role: str,
    purpose: str,
    agencies: tuple[str, ...],
    subject: str,
    at: dt.datetime | None,
) -> None:
    """The decision for a request, and the clauses behind it."""
    from zoneinfo import ZoneInfo

    from policy.agreement import load_agreement
    from policy.engine import PolicyEngine, Request
    from policy.summary import FIELD_WORDS

    agreement, _ = load(load_agreement, path)
    if agreement.purpose(purpose) is None:
        fail(
            f"{path}: purposes: no purpose {purpose!r} "
            f"(known: {', '.join(p.id for p in agreement.purposes)})",
            2,
        )
    unknown = [a for a in agencies if a not in agreement.agencies]
    if unknown:
        fail(
            f"{path}: no party holds agency {', '.join(unknown)} (known: {', '.join(agreement.agencies)})", 2
        )
    zone = ZoneInfo(agreement.agreement.timezone)
    when = at.replace(tzinfo=zone) if at is not None else dt.datetime.now(zone)
    engine = PolicyEngine(agreement)
    clauses = {c.id: c.description for c in agreement.permissions}
    clauses.update({c.id: c.description for c in agreement.restrictions})
    clauses.update({f"purpose:{p.id}": f"purpose scope: {p.subjects} only" for p in agreement.purposes})
    click.echo(
        f"{requester} as {role}, for {purpose}, about {subject} subject, at {when:%a %Y-%m-%d %H:%M %Z}:"
    )
    for agency in agencies or agreement.agencies:
        request = Request(requester, role, purpose, agency, when, subject)  # type: ignore[arg-type]
        decision = engine.decide(request)
        click.echo(f"\n  {agency}: {'ALLOW' if decision.allowed else 'DENY'} ({decision.reason})")
        click.echo(f"    {decision.message}")
        for clause in decision.clauses:
            click.echo(f"    {clause}: {clauses.get(clause, '')}")
        if decision.allowed:
            fields = ", ".join(FIELD_WORDS[f] for f in sorted(decision.released))
            click.echo(f"    Released: {fields}; activity from the last {decision.lookback_days} days.")
            categories = sorted({c for r in agreement.restrictions for c in r.categories})
            hidden = engine.hidden_categories(request, categories)
            if hidden:
                click.echo(f"    Never disclosed: {', '.join(sorted(hidden))}.")
            if decision.obligations:
                click.echo(f"    Obligations: {', '.join(decision.obligations)}.")


@dsa.command("diff")
@click.argument("old", type=_FILE)
@click.argument("new", type=_FILE)
def diff_command(old: Path, new: Path) -> None:
    """What NEW allows that OLD did not, and the reverse. Exit status 1 when they differ."""
    from policy.agreement import load_agreement
    from policy.diff import diff

    before, _ = load(load_agreement, old)
    after, _ = load(load_agreement, new)
    gained, lost = diff(before, after)
    click.echo(f"{new} allows what {old} did not:")
    click.echo("\n".join(f"  + {line}" for line in gained) or "  nothing")
    click.echo(f"\n{old} allowed what {new} does not:")
    click.echo("\n".join(f"  - {line}" for line in lost) or "  nothing")
    sys.exit(1 if gained or lost else 0)


@dsa.command("ropa")
@click.argument("path", type=_FILE)
def ropa_command(path: Path) -> None:
    """Print the UK GDPR Article 30 record of processing derived from the agreement (Markdown)."""
    from policy.agreement import load_agreement
    from policy.ropa import ropa

    agreement, _ = load(load_agreement, path)
    click.echo(ropa(agreement), nl=False)


@dsa.command("keygen")
@click.argument("path", type=_FILE)
@click.option("--party", required=True, help="The party the key belongs to.")
@click.option("--key", "key_path", type=_FILE, required=True, help="Where to write the private key (0600).")
def keygen(path: Path, party: str, key_path: Path) -> None:
    """Create a party's signing key and write its public half into the agreement (comments are kept).

    Every existing signature becomes invalid: the agreement changed. Keep the private key safe; it is the
    party's signature.
    """
    from policy.agreement import load_agreement
    from policy.signing import generate_key, set_signing_key

    load(load_agreement, path)
    if key_path.exists():
        fail(f"{key_path}: already exists; refusing to overwrite a key", 2)
    public = generate_key(key_path)
    try:
        set_signing_key(path, party, public)
    except ConfigError as error:
        key_path.unlink()
        fail(str(error), 2)
    err_console.print(f"Wrote {key_path} (owner-only) and {party}'s signing_key into {path}.")


@dsa.command("sign")
@click.argument("path", type=_FILE)
@click.option("--party", required=True, help="The signing party's id.")
@click.option("--key", "key_path", type=_FILE, required=True, help="The party's private key.")
def sign_command(path: Path, party: str, key_path: Path) -> None:
    """Sign the agreement as a party (adds to <name>.signatures.toml)."""
    from policy.agreement import load_agreement
    from policy.signing import read_private_key, sign, signatures_path, write_signature

    agreement, data = load(load_agreement, path)
    key = load(read_private_key, key_path)
    try:
        signature = sign(agreement, data, party, key)
    except ConfigError as error:
        fail(f"{path}: {error}", 2)
    write_signature(signatures_path(path), signature)
    err_console.print(
        f"{party} signed {agreement.id} v{agreement.version} ({signature.digest}); "
        f"wrote {signatures_path(path)}"
    )


@dsa.command("verify")
@click.argument("path", type=_FILE)
def verify_command(path: Path) -> None:
    """Check every party's signature and the agreement's dates. Exit status 1 unless every party that holds
    data has signed this exact text and the agreement is in force."""
    from policy.agreement import load_agreement
    from policy.signing import read_signatures, signatures_path, verify
    from policy.trust import AgreementRefusedError, in_force, local_today

    agreement, data = load(load_agreement, path)
    statuses = verify(agreement, data, load(read_signatures, signatures_path(path)))
    ok = True
    for party in agreement.parties:
        status = statuses[party.id]
        needed = bool(party.agencies)
        ok = ok and (status == "valid" or not needed)
        note = "" if needed else " (asks only: signature recommended)"
        click.echo(f"{party.id}: {status}{note}")
    try:
        for warning in in_force(agreement, local_today(agreement), str(path)):
            click.echo(f"warning: {warning}")
    except AgreementRefusedError as error:
        click.echo(str(error))
        ok = False
    click.echo("verified" if ok else "NOT VERIFIED: services will refuse this agreement")
    sys.exit(0 if ok else 1)
