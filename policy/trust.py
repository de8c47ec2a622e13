"""Whether a service may run under an agreement: signed by every party whose data it governs, in force, and
not past its review date."""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from zoneinfo import ZoneInfo

from pydantic import Field

from lateral.config import ConfigError, Frozen
from policy.agreement import Agreement, load_agreement
from policy.signing import digest, read_signatures, signatures_path, verify

log = logging.getLogger(__name__)

REVIEW_WARNING_DAYS = 30


class PolicySection(Frozen):
    """A service's `[policy]`: its agreement, and the signing keys it trusts for it."""

    # The signed data-sharing agreement (relative to the configuration file).
    agreement: str = Field(min_length=1)
    # The public keys ("ed25519:...") the parties whose signatures this service needs were given out of
    # band. With them, an agreement replaced wholesale and re-signed with other keys is refused.
    trusted_keys: tuple[str, ...] = ()

    def resolved(self, base: Path) -> PolicySection:
        return self.model_copy(update={"agreement": str((base / self.agreement).resolve())})


class AgreementRefusedError(ConfigError):
    """The agreement may not be used: `reason` says why in one word (UNSIGNED, TAMPERED, EXPIRED, ...)."""

    def __init__(self, message: str, reason: str) -> None:
        super().__init__(message)
        self.reason = reason


@dataclass(frozen=True)
class TrustedAgreement:
    agreement: Agreement
    path: Path
    digest: str
    warnings: tuple[str, ...]


def local_today(agreement: Agreement) -> dt.date:
    return dt.datetime.now(ZoneInfo(agreement.agreement.timezone)).date()


def in_force(agreement: Agreement, today: dt.date, where: str) -> list[str]:
    """Refuses an agreement outside its dates; returns warnings (review date close)."""
    header = agreement.agreement
    if today < header.valid_from:
        raise AgreementRefusedError(
            f"{where}: agreement {agreement.id} v{agreement.version} is not in force until "
            f"{header.valid_from.isoformat()}",
            "NOT_YET_VALID",
        )
    if today > header.valid_until:
        raise AgreementRefusedError(
            f"{where}: agreement {agreement.id} v{agreement.version} expired on "
            f"{header.valid_until.isoformat()}",
            "EXPIRED",
        )
    if today > header.review_by:
        raise AgreementRefusedError(
            f"{where}: agreement {agreement.id} v{agreement.version} was due for review by "
            f"{header.review_by.isoformat()}; the parties must review and re-sign it",
            "REVIEW_OVERDUE",
        )
    days = (header.review_by - today).days
    if days <= REVIEW_WARNING_DAYS:
        return [f"{where}: agreement {agreement.id} is due for review by {header.review_by} (in {days} days)"]
    return []


def load_trusted(
    path: Path,
    *,
    governs: Iterable[str],
    today: dt.date | None = None,
    trusted_keys: Iterable[str] = (),
) -> TrustedAgreement:
    """Loads an agreement for a service that holds or asks for the given agencies' data.

    Every party controlling one of those agencies must have signed this exact agreement, with a key among
    `trusted_keys` when they are given.

    Raises:
        ConfigError: the file is invalid.
        AgreementRefusedError: unsigned, tampered with, not in force or past its review date.
    """
    agreement, data = load_agreement(path)
    parties: dict[str, None] = {}
    for agency in governs:
        controller = agreement.controller_of(agency)
        if controller is None:
            raise AgreementRefusedError(
                f"{path}: no party holds agency {agency!r}: the agreement does not govern its data",
                "NOT_A_PARTY",
            )
        parties[controller.id] = None
    statuses = verify(agreement, data, read_signatures(signatures_path(path)))
    pinned = set(trusted_keys)
    for party in parties:
        if pinned and agreement.party(party).signing_key not in pinned:
            raise AgreementRefusedError(
                f"{path}: the signing key the agreement names for {party} is not one this service trusts "
                "([policy] trusted_keys): the agreement may have been replaced",
                "UNTRUSTED_KEY",
            )
        status = statuses[party]
        if status == "invalid":
            raise AgreementRefusedError(
                f"{path}: the signature of {party} does not match this agreement: it was changed after "
                "signing, or the signature is not the party's",
                "TAMPERED",
            )
        if status != "valid":
            why = "has no signing key in the agreement" if status == "no-key" else "has not signed it"
            raise AgreementRefusedError(
                f"{path}: {party}, whose data it governs, {why} (lateral dsa sign)", "UNSIGNED"
            )
    warnings = in_force(agreement, today or local_today(agreement), str(path))
    for warning in warnings:
        log.warning("%s", warning)
    return TrustedAgreement(agreement, path, digest(data), tuple(warnings))
