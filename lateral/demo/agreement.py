"""The demo's data-sharing agreement: the Northshire example, in force around today, with a fresh key for
every party and every party's signature, so the demo runs exactly as a real deployment must."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from pathlib import Path

import tomlkit
from tomlkit.toml_document import TOMLDocument

import policy
from lateral.identity import Caller
from policy.agreement import load_agreement
from policy.signing import generate_key, read_private_key, sign, signatures_path, write_signature

EXAMPLE_AGREEMENT = Path(policy.__file__).parent / "examples" / "northshire-dsa.toml"
AGREEMENT_FILE = "dsa.toml"
# Who the demo's checks come from: a MASH manager at the council, who may check children and adults.
DEMO_CALLER = Caller(
    organisation="northshire-council", system="lateral-demo", user="demo.manager", role="mash-manager"
)
# A police MASH officer: may ask the other agencies about children (P3), with less released.
DEMO_POLICE_CALLER = Caller(
    organisation="northshire-police", system="lateral-demo", user="demo.officer", role="mash-police-officer"
)


def write_signed_agreement(
    folder: Path,
    *,
    today: dt.date | None = None,
    amend: Callable[[TOMLDocument], None] | None = None,
) -> Path:
    """Writes folder/dsa.toml from the example (valid from a month ago, review in a year, marked as a
    development deployment), keys under folder/keys/ (owner-only) and every party's signature.

    Args:
        amend: changes to make to the agreement before it is signed (tests add parties or clauses).

    Returns:
        The agreement's path.
    """
    today = today or dt.date.today()
    document = tomlkit.parse(EXAMPLE_AGREEMENT.read_text())
    header = document["agreement"]
    assert isinstance(header, dict)
    header["valid_from"] = today - dt.timedelta(days=30)
    header["review_by"] = today + dt.timedelta(days=365)
    header["valid_until"] = today + dt.timedelta(days=730)
    header["deployment"] = "development"
    if amend is not None:
        amend(document)
    keys = folder / "keys"
    keys.mkdir(parents=True, exist_ok=True)
    parties = document["parties"]
    assert isinstance(parties, list)
    for party in parties:
        key_path = keys / f"{party['id']}.key"
        key_path.unlink(missing_ok=True)
        party["signing_key"] = generate_key(key_path)
    path = folder / AGREEMENT_FILE
    path.write_text(tomlkit.dumps(document))
    signatures_path(path).unlink(missing_ok=True)
    agreement, data = load_agreement(path)
    for party in agreement.parties:
        key = read_private_key(keys / f"{party.id}.key")
        write_signature(signatures_path(path), sign(agreement, data, party.id, key))
    return path
