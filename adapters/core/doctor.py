"""`lateral adapter doctor`: everything an agency admin needs to know before going live, in one report.

Checks, in order: the database can be reached; whether the account could write (it should not: read-only
sessions are a second line, grants the first); every mapping runs, has its columns, and a sample of its
rows parses (keys and family names present, dates readable, codes in the vocabulary); the data-sharing
agreement is signed and in force; the certificates load and are not about to expire; the audit log opens.
Findings name tables, columns and counts, never a value.
"""

from __future__ import annotations

import datetime as dt
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import sqlalchemy as sa

from adapters.core.config import AdapterConfig, TableMapping
from adapters.core.connect import is_read_only, source_engine
from adapters.core.source import mapping_statement, parse_date
from lateral.config import ConfigError

Level = Literal["ok", "warning", "problem"]
SAMPLE = 500
CERTIFICATE_WARNING_DAYS = 30


@dataclass(frozen=True)
class Finding:
    level: Level
    topic: str
    message: str


def _writable(conn: sa.Connection) -> str | None:
    """Why the account could write, if the database can tell; None when it could not (or cannot tell)."""
    name = conn.dialect.name
    if name == "postgresql":
        row = conn.execute(
            sa.text(
                "SELECT r.rolsuper, EXISTS (SELECT 1 FROM information_schema.table_privileges p "
                "WHERE p.grantee = current_user "
                "AND p.privilege_type IN ('INSERT', 'UPDATE', 'DELETE', 'TRUNCATE')) "
                "FROM pg_roles r WHERE r.rolname = current_user"
            )
        ).one()
        if row[0]:
            return "the account is a PostgreSQL superuser"
        return "the account holds INSERT, UPDATE or DELETE on some table" if row[1] else None
    if name in ("mysql", "mariadb"):
        grants = " ".join(str(r[0]) for r in conn.execute(sa.text("SHOW GRANTS")))
        for privilege in ("ALL PRIVILEGES", "INSERT", "UPDATE", "DELETE"):
            if f"{privilege}" in grants.upper():
                return f"the account's grants include {privilege}"
        return None
    if name == "sqlite":
        database = conn.engine.url.database or ""
        if database and database != ":memory:" and os.access(database, os.W_OK):
            return "this operating-system user can write the SQLite file"
    return None


def _mapping_findings(conn: sa.Connection, config: AdapterConfig) -> list[Finding]:
    out: list[Finding] = []
    vocabulary = config.vocabulary
    mappings: list[tuple[str, TableMapping | None, tuple[str, ...]]] = [
        ("people", config.mapping.people, ("record_key", "given_names", "family_name")),
        ("aliases", config.mapping.aliases, ("record_key", "given_names", "family_name")),
        ("events", config.mapping.events, ("record_key", "activity_date", "category")),
    ]
    for name, mapping, required in mappings:
        if mapping is None:
            continue
        topic = f"mapping.{name}"
        try:
            result = conn.execute(mapping_statement(mapping))
            columns = list(result.keys())
            rows = [dict(zip(columns, row, strict=True)) for row in result.fetchmany(SAMPLE)]
            result.close()
        except sa.exc.DBAPIError as error:
            out.append(
                Finding("problem", topic, f"the database rejected the mapping: {type(error.orig).__name__}")
            )
            continue
        missing = [c for c in required if c not in columns]
        if missing:
            out.append(Finding("problem", topic, f"the result has no column(s) {missing}"))
            continue
        if not rows:
            out.append(Finding("warning", topic, "returned no rows"))
            continue
        sampled = len(rows)

        def share(n: int, sampled: int = sampled) -> str:
            return f"{n} of {sampled} sampled rows"

        empty_keys = sum(1 for r in rows if not str(r["record_key"] or "").strip())
        if empty_keys:
            out.append(
                Finding("warning", topic, f"{share(empty_keys)} have no record_key (they are skipped)")
            )
        if "family_name" in required:
            no_family = sum(1 for r in rows if not str(r["family_name"] or "").strip())
            if no_family:
                out.append(Finding("warning", topic, f"{share(no_family)} have no family_name (skipped)"))
        for column in ("date_of_birth", "activity_date"):
            if column in columns:
                bad = sum(1 for r in rows if r[column] not in (None, "") and parse_date(r[column]) is None)
                if bad:
                    out.append(Finding("warning", topic, f"{share(bad)} have an unreadable {column}"))
        if name == "events":
            unknown = sorted({str(r["category"]) for r in rows if str(r["category"]) not in vocabulary})
            if unknown:
                out.append(
                    Finding("warning", topic, f"{len(unknown)} code(s) in the sample are not in [vocabulary]")
                )
        out.append(Finding("ok", topic, f"runs; {len(columns)} columns; {len(rows)} sampled rows read"))
    return out


def _agreement(config: AdapterConfig) -> Finding:
    from policy.trust import load_trusted

    try:
        trusted = load_trusted(
            Path(config.policy.agreement), governs=[config.agency.id], trusted_keys=config.policy.trusted_keys
        )
    except ConfigError as error:
        return Finding("problem", "policy", str(error))
    a = trusted.agreement
    if trusted.warnings:
        return Finding("warning", "policy", "; ".join(trusted.warnings))
    return Finding(
        "ok", "policy", f"{a.id} v{a.version} is signed and in force (review by {a.agreement.review_by})"
    )


def _certificates(config: AdapterConfig) -> Finding:
    if config.tls is None:
        return Finding("warning", "tls", "no [tls]: the adapter can only run with --insecure-dev")
    from cryptography import x509

    from pki.tls import Tls

    try:
        tls = Tls(config.tls)
    except ConfigError as error:
        return Finding("problem", "tls", str(error))
    expires = x509.load_pem_x509_certificate(tls.cert).not_valid_after_utc
    days = (expires - dt.datetime.now(dt.UTC)).days
    level: Level = "warning" if days < CERTIFICATE_WARNING_DAYS else "ok"
    return Finding(
        level,
        "tls",
        f"{tls.identity.uri}, valid for {days} more days; answers {', '.join(config.tls.brokers)}",
    )


def _audit(config: AdapterConfig) -> Finding:
    if config.audit is None:
        return Finding("warning", "audit", "no [audit]: the adapter can only run with --insecure-dev")
    from audit.keys import load_keys

    try:
        load_keys(config.audit)
        engine = sa.create_engine(config.audit.url)
        with engine.connect():
            pass
        engine.dispose()
    except (ConfigError, sa.exc.SQLAlchemyError) as error:
        return Finding(
            "problem", "audit", f"{error}" if isinstance(error, ConfigError) else type(error).__name__
        )
    return Finding("ok", "audit", "keys load and the log's database opens")


def diagnose(config: AdapterConfig) -> list[Finding]:
    """Every check; never raises for what it finds."""
    findings: list[Finding] = []
    try:
        engine = source_engine(config.source.url)
        with engine.connect() as conn:
            findings.append(Finding("ok", "source", f"connected ({engine.dialect.name})"))
            why = _writable(conn)
            if why:
                findings.append(
                    Finding(
                        "warning",
                        "source",
                        f"{why}: grant it SELECT only (docs/agency-databases.md)"
                        + (
                            "; the adapter's sessions are read-only all the same"
                            if is_read_only(engine)
                            else ""
                        ),
                    )
                )
            else:
                findings.append(
                    Finding("ok", "source", "the account cannot write (or the database cannot say)")
                )
            findings += _mapping_findings(conn, config)
        engine.dispose()
    except (sa.exc.SQLAlchemyError, ImportError) as error:
        findings.append(Finding("problem", "source", f"cannot connect: {type(error).__name__}"))
    findings += [_agreement(config), _certificates(config), _audit(config)]
    return findings
