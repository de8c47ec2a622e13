"""Proactive identification as the agreement allows it (`[linkage]`; docs/proactive.md).

The agreement opts in: a purpose marked `checks = "proactive"`, and a `[linkage]` section naming the
agencies that publish encodings, the linkage service's certificate identity, the look-back window, and when
linked activity makes someone a review candidate. Without the section nothing is published.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Annotated

from pydantic import Field

from lateral.config import Frozen

_ID = r"^[a-z][a-z0-9-]{0,62}$"
# What crosses between adapters, the linkage service and the broker (matched whole): a linkage key's id
# ("<epoch>:<16 hex digits>", linkage.keys.LinkageKey.key_id), an agency's token of a record, a candidate's
# id (both 32 hex digits), and a publisher's digest of an encoding (64).
KEY_ID = re.compile(r"[0-9]{1,10}:[0-9a-f]{16}")
TOKEN = re.compile(r"[0-9a-f]{32}")
CANDIDATE_ID = TOKEN
DIGEST = re.compile(r"[0-9a-f]{64}")
# A linkage service's certificate identity (lateral pki issue --role linkage).
SERVICE_IDENTITY = (
    r"^spiffe://[a-z0-9][a-z0-9.-]{0,62}/org/[a-z0-9][a-z0-9-]{0,62}/linkage/[a-z0-9][a-z0-9-]{0,62}$"
)


class LinkageTerms(Frozen):
    """Who publishes encodings, where to, of whom, and who becomes a review candidate."""

    # The purpose proactive reviews are made for: it must be one with checks = "proactive".
    purpose: str = Field(pattern=_ID)
    # The linkage service's certificate identity: the only service encodings are published to.
    service: str = Field(pattern=SERVICE_IDENTITY)
    # The agencies that publish (each adapter publishes only when named here).
    agencies: tuple[Annotated[str, Field(pattern=_ID)], ...] = Field(min_length=2)
    # Only people with activity in this many days are published; older encodings are deleted.
    lookback_days: int = Field(default=365, ge=1, le=3650)
    # A linked person is a candidate with activity at this many agencies within window_days...
    min_agencies: int = Field(default=3, ge=2)
    window_days: int = Field(default=90, ge=1, le=3650)
    # ... or with activity in any of these categories.
    always_review: tuple[str, ...] = ()
    # How often each adapter publishes (changes only).
    publish_every_hours: float = Field(default=24.0, ge=0.01, le=168.0)


def linkage_problems(
    terms: LinkageTerms, purposes: Mapping[str, str], agencies: set[str], organisations: set[str]
) -> list[str]:
    """Problems of a [linkage] section that need the rest of the agreement (purpose id -> its checks)."""
    problems = []
    if terms.purpose not in purposes:
        problems.append(f"linkage: purpose: {terms.purpose!r} is not one of the agreement's purposes")
    elif purposes[terms.purpose] != "proactive":
        problems.append(f'linkage: purpose: {terms.purpose!r} must be a purpose with checks = "proactive"')
    for agency in terms.agencies:
        if agency not in agencies:
            problems.append(f"linkage: agencies: {agency!r} is not one of the agreement's agencies")
    organisation = terms.service.split("/org/", 1)[1].split("/", 1)[0]
    if organisation not in organisations:
        problems.append(f"linkage: service: organisation {organisation!r} is not a party to the agreement")
    if terms.min_agencies > len(terms.agencies) and not terms.always_review:
        problems.append(
            f"linkage: min_agencies: {terms.min_agencies} is more than the {len(terms.agencies)} agencies "
            "that publish, and no always_review category is given: nobody could ever be a candidate"
        )
    return problems
