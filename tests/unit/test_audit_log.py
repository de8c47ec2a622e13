"""The audit log on SQLite files: appends, checkpoints, and every kind of tampering detected by verify,
naming the sequence number; payloads removed after retention keep every proof valid."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from click.testing import CliRunner
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey

from audit.reader import export_bundle
from audit.sealing import pseudonym, seal_subject, unseal_subject
from audit.store import AuditLog, checkpoints, events, payloads
from audit.verify import verify_bundle, verify_log
from lateral.cli import main
from protos.lateral.v1 import common_pb2

KEY = Ed25519PrivateKey.generate()


@pytest.fixture
def url(tmp_path: Path) -> str:
    """A log of 25 events with checkpoints at 10 and 20."""
    url = f"sqlite:///{tmp_path / 'audit.db'}"
    log = AuditLog(url, KEY, checkpoint_every=10)
    for i in range(25):
        log.append("check-received", {"check_id": f"c{i}", "user": f"u{i % 3}"})
    log.close()
    return url


def change(url: str, *statements: sa.Executable) -> None:
    engine = sa.create_engine(url)
    with engine.begin() as conn:
        for statement in statements:
            conn.execute(statement)
    engine.dispose()


def test_an_untouched_log_verifies(url: str) -> None:
    result = verify_log(url, KEY.public_key())
    assert (result.ok, result.size, result.checkpoints) == (True, 25, 2)


def _row(url: str, seq: int) -> dict[str, object]:
    engine = sa.create_engine(url)
    with engine.connect() as conn:
        row = dict(conn.execute(sa.select(events).where(events.c.seq == seq)).one()._mapping)
    engine.dispose()
    return row


TAMPERING: dict[str, tuple[Callable[[str], None], int]] = {
    "a byte of an event's time": (
        lambda url: change(
            url, events.update().where(events.c.seq == 7).values(at="2020-01-01T00:00:00.000000+00:00")
        ),
        7,
    ),
    "a byte of a payload": (
        lambda url: change(
            url, payloads.update().where(payloads.c.seq == 12).values(body='{"check_id":"c11","user":"u9"}')
        ),
        12,
    ),
    "an event deleted": (
        lambda url: change(
            url, events.delete().where(events.c.seq == 5), payloads.delete().where(payloads.c.seq == 5)
        ),
        5,
    ),
    "two events reordered": (
        lambda url: _swap(url, 14, 15),
        14,
    ),
    "the log truncated": (
        lambda url: change(
            url, events.delete().where(events.c.seq > 17), payloads.delete().where(payloads.c.seq > 17)
        ),
        18,
    ),
    "a checkpoint replaced": (
        lambda url: change(
            url,
            checkpoints.update()
            .where(checkpoints.c.tree_size == 20)
            .values(root_hash="00" * 32, signature="QUFB" * 22),
        ),
        20,
    ),
}


def _swap(url: str, a: int, b: int) -> None:
    first, second = _row(url, a), _row(url, b)
    fields = ("at", "kind", "payload_sha256", "leaf_hash", "signature")
    change(
        url,
        events.update().where(events.c.seq == a).values({f: second[f] for f in fields}),
        events.update().where(events.c.seq == b).values({f: first[f] for f in fields}),
    )


@pytest.mark.parametrize("tampering", sorted(TAMPERING))
def test_verify_detects_tampering_and_names_the_first_bad_event(url: str, tampering: str) -> None:
    alter, seq = TAMPERING[tampering]
    alter(url)
    result = verify_log(url, KEY.public_key())
    assert not result.ok
    assert result.first_bad_seq == seq, [str(p) for p in result.problems]


def test_the_cli_exits_non_zero_naming_the_event(url: str, tmp_path: Path) -> None:
    public = tmp_path / "log.pub"
    from cryptography.hazmat.primitives import serialization

    public.write_bytes(
        KEY.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )
    )
    ok = CliRunner().invoke(main, ["audit", "verify", "--url", url, "--public-key", str(public)])
    assert (ok.exit_code, ok.output) == (
        0,
        "verified: 25 events, 2 checkpoints, 0 payloads removed after retention\n",
    )
    TAMPERING["an event deleted"][0](url)
    bad = CliRunner().invoke(main, ["audit", "verify", "--url", url, "--public-key", str(public)])
    assert bad.exit_code == 1
    assert bad.output.splitlines()[0] == "BAD: event 5: is missing (deleted)"
    assert bad.output.splitlines()[-1].startswith("NOT VERIFIED: first bad event 5;")


def test_payloads_removed_after_retention_keep_every_proof_valid(url: str) -> None:
    change(url, payloads.delete().where(payloads.c.seq <= 10))
    result = verify_log(url, KEY.public_key())
    assert (result.ok, result.payloads_removed) == (True, 10)


def test_an_export_bundle_verifies_offline_and_detects_changes(url: str) -> None:
    bundle = export_bundle(url, KEY.public_key())
    assert verify_bundle(json.loads(json.dumps(bundle))).ok
    assert len(bundle["inclusion_proofs"]) == 20
    bundle["events"][2]["kind"] = "check-completed"
    assert verify_bundle(bundle).first_bad_seq == 3


@pytest.mark.parametrize(
    ("change_bundle", "error"),
    [
        (lambda b: b["events"][0].update(signature=None), "events[0].signature must be a string"),
        (lambda b: b.update(public_key_ed25519=""), "public_key_ed25519 must be an Ed25519 key in base64"),
        (lambda b: b["payloads"].update({"x": "{}"}), "payloads must map sequence numbers to strings"),
        (lambda b: b.pop("checkpoints"), "checkpoints must be a list"),
    ],
)
def test_a_malformed_bundle_is_refused_naming_the_part(
    url: str, tmp_path: Path, change_bundle: Callable[[dict[str, Any]], None], error: str
) -> None:
    bundle = json.loads(json.dumps(export_bundle(url, KEY.public_key())))
    change_bundle(bundle)
    path = tmp_path / "bundle.json"
    path.write_text(json.dumps(bundle))
    result = CliRunner().invoke(main, ["audit", "verify", "--bundle", str(path)])
    assert (result.exit_code, result.output) == (2, f"error: {path}: not an audit bundle: {error}\n")


def test_a_bundle_that_is_not_json_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "bundle.json"
    path.write_bytes(b"\xff{")
    result = CliRunner().invoke(main, ["audit", "verify", "--bundle", str(path)])
    assert (result.exit_code, result.output) == (2, f"error: {path}: not an audit bundle: not JSON\n")


def test_a_bundle_is_checked_against_the_services_key_when_given(url: str, tmp_path: Path) -> None:
    from audit.rotation import fingerprint

    service_key = tmp_path / "log-signing.pub"
    service_key.write_bytes(
        KEY.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )
    )
    genuine = tmp_path / "genuine.json"
    genuine.write_text(json.dumps(export_bundle(url, KEY.public_key())))
    result = CliRunner().invoke(
        main, ["audit", "verify", "--bundle", str(genuine), "--public-key", str(service_key)]
    )
    assert (result.exit_code, result.output) == (
        0,
        "verified: 25 events, 2 checkpoints, 0 payloads removed after retention\n",
    )
    # The same events re-signed throughout by someone else: internally consistent, but not the service's.
    forger = Ed25519PrivateKey.generate()
    forged_url = f"sqlite:///{tmp_path / 'forged.db'}"
    log = AuditLog(forged_url, forger, checkpoint_every=10)
    for i in range(25):
        log.append("check-received", {"check_id": f"c{i}", "user": f"u{i % 3}"})
    log.close()
    forged = tmp_path / "forged.json"
    forged.write_text(json.dumps(export_bundle(forged_url, forger.public_key())))
    alone = CliRunner().invoke(main, ["audit", "verify", "--bundle", str(forged)])
    assert alone.exit_code == 0
    assert alone.output.splitlines()[0] == (
        f"the bundle is verified against the key it carries, fingerprint {fingerprint(forger.public_key())}: "
        "give --public-key to check that it is the service's"
    )
    checked = CliRunner().invoke(
        main, ["audit", "verify", "--bundle", str(forged), "--public-key", str(service_key)]
    )
    assert (checked.exit_code, checked.output.splitlines()[-1]) == (
        1,
        f"BAD: the bundle is signed by another key (fingerprint {fingerprint(forger.public_key())}) than "
        f"{service_key}: it may have been re-signed throughout",
    )


def test_subjects_are_pseudonymous_and_sealed_to_the_auditors() -> None:
    auditors = X25519PrivateKey.generate()
    subject = common_pb2.Subject(given_names=["Zoë"], family_name="O'Brien", date_of_birth="2012-03-14")
    typed_again = common_pb2.Subject(given_names=["zoe"], family_name="OBRIEN", date_of_birth="2012-03-14")
    key = b"k" * 32
    assert pseudonym(key, subject) == pseudonym(key, typed_again)
    assert pseudonym(key, subject) != pseudonym(b"j" * 32, subject)
    sealed = seal_subject(auditors.public_key(), subject)
    assert "Brien" not in sealed
    assert unseal_subject(auditors, sealed) == subject
    with pytest.raises(InvalidTag):
        unseal_subject(X25519PrivateKey.generate(), sealed)


def test_an_agency_countersigns_consistent_checkpoints_and_refuses_a_rewritten_history(
    url: str, tmp_path: Path
) -> None:
    from audit.countersign import CountersignError, countersign

    agency_url = f"sqlite:///{tmp_path / 'agency.db'}"
    agency = AuditLog(agency_url, Ed25519PrivateKey.generate())
    first = countersign(export_bundle(url, KEY.public_key()), KEY.public_key(), agency, agency_url)
    assert (first.tree_size, first.previous_size) == (20, 0)
    broker = AuditLog(url, KEY, checkpoint_every=10)
    for i in range(10):
        broker.append("check-received", {"check_id": f"later{i}"})
    broker.close()
    second = countersign(export_bundle(url, KEY.public_key()), KEY.public_key(), agency, agency_url)
    assert (second.tree_size, second.previous_size) == (35, 20)
    # The broker's operator, holding its key, rebuilds the log with a different past:
    forged_url = f"sqlite:///{tmp_path / 'forged.db'}"
    forged = AuditLog(forged_url, KEY, checkpoint_every=10)
    for i in range(40):
        forged.append("check-received", {"check_id": f"other{i}"})
    forged.close()
    with pytest.raises(CountersignError) as refused:
        countersign(export_bundle(forged_url, KEY.public_key()), KEY.public_key(), agency, agency_url)
    assert str(refused.value) == (
        "the broker's log rewrote history: its first 35 events differ from what was countersigned"
    )
    with pytest.raises(CountersignError) as wrong:
        countersign(
            export_bundle(url, KEY.public_key()),
            Ed25519PrivateKey.generate().public_key(),
            agency,
            agency_url,
        )
    assert str(wrong.value) == "the bundle is signed by another key than the broker's"
    agency.close()
    assert verify_log(agency_url, agency._signer.public_key()).ok


def test_keys_rotate_by_handing_over_and_verification_follows_the_chain(tmp_path: Path) -> None:
    from audit.rotation import ensure_key
    from lateral.config import ConfigError

    url = f"sqlite:///{tmp_path / 'rotating.db'}"
    old, new, intruder = (Ed25519PrivateKey.generate() for _ in range(3))
    log = AuditLog(url, old, checkpoint_every=5)
    ensure_key(log, old)
    for i in range(6):
        log.append("check-received", {"i": i})
    log.close()
    with pytest.raises(ConfigError, match="the audit log is signed with another key: to rotate keys"):
        ensure_key(AuditLog(url, new), new)
    log = AuditLog(url, new, checkpoint_every=5)
    ensure_key(log, new, previous=old)
    for i in range(6):
        log.append("check-received", {"i": i})
    log.checkpoint()
    log.close()
    result = verify_log(url, old.public_key())
    assert result.ok, [str(p) for p in result.problems]
    assert verify_log(url, new.public_key()).first_bad_seq == 1  # the chain starts from the first key
    # An intruder's "rotation" is not signed by the key in force:
    forged = AuditLog(url, intruder)
    forged.append("key-rotated", {"public_key": "x", "previous": "y"})
    forged.append("check-received", {"i": 99})
    forged.close()
    assert verify_log(url, old.public_key()).first_bad_seq == 15


def test_pruning_at_the_end_of_retention_keeps_the_log_verifiable(tmp_path: Path) -> None:
    import datetime as dt

    from audit.retention import prune
    from audit.rotation import ensure_key

    url = f"sqlite:///{tmp_path / 'old.db'}"
    log = AuditLog(url, KEY, checkpoint_every=4)
    ensure_key(log, KEY)
    for i in range(8):
        log.append("check-received", {"i": i})
    removed = prune(log, retention_days=30, now=dt.datetime.now(dt.UTC) + dt.timedelta(days=31))
    log.checkpoint()
    log.close()
    assert removed == 8  # the log-key event keeps its payload
    result = verify_log(url, KEY.public_key())
    assert (result.ok, result.payloads_removed) == (True, 8)


def test_the_report_shows_the_patterns_auditors_look_for() -> None:
    from audit.reader import Event, report

    def received(seq: int, at: str, user: str, subject: str, case: str) -> Event:
        payload = {"organisation": "council", "user": user, "subject_pseudonym": subject, "case_ref": case}
        return Event(seq, at, "check-received", payload)

    found = [
        received(1, "2026-11-23T10:00:00+00:00", "ann", "p1", "C1"),  # Monday 10:00: in hours
        received(2, "2026-11-23T21:30:00+00:00", "ann", "p1", "C1"),  # 21:30: out of hours, same subject
        received(3, "2026-11-22T10:00:00+00:00", "bob", "p2", "C2"),  # Sunday
        Event(
            4,
            "2026-11-23T11:00:00+00:00",
            "check-denied",
            {"organisation": "council", "reason": "RESTRICTED"},
        ),
    ]
    assert report(found) == {
        "checks": 3,
        "per_user": {"council/ann": 2, "council/bob": 1},
        "per_organisation": {"council": 3},
        "out_of_hours": [2, 3],
        "repeated_subject_by_one_user": [
            {"organisation": "council", "user": "ann", "subject_pseudonym": "p1", "checks": 2}
        ],
        "case_refs_used_once": ["C2"],
        "denied": [{"seq": 4, "reason": "RESTRICTED"}],
    }
