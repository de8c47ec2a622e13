"""The demo federation's audit logs: the auditors' key pair, and for the broker and each adapter its own
log (SQLite), log signing key and pseudonym key, all under workdir/audit."""

from __future__ import annotations

import shutil
from pathlib import Path

from audit.keys import AuditSection, generate_auditor_keys, generate_service_keys


def prepare_audit(workdir: Path, services: list[str]) -> dict[str, AuditSection]:
    """Fresh keys and empty logs for each service ("broker" and the agency ids)."""
    folder = workdir / "audit"
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    generate_auditor_keys(folder)
    sections = {}
    for service in services:
        keys = folder / service
        keys.mkdir()
        generate_service_keys(keys)
        sections[service] = AuditSection(
            url=f"sqlite:///{(folder / f'{service}.db').resolve()}",
            signing_key=str(keys / "log-signing.key"),
            pseudonym_key=str(keys / "pseudonym.key"),
            auditor_public_key=str(folder / "auditor.pub"),
        )
    return sections
