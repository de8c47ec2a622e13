"""A fifth agency, education, defined entirely here: its own schema, data, mapping and vocabulary. The
framework serves it unchanged, and a broker asks it like any other."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import sqlalchemy as sa
from tomlkit.toml_document import TOMLDocument

from adapters.core import create_server, load_adapter_config
from broker import BrokerConfig
from broker import create_server as create_broker
from broker.config import AgencyEndpoint
from lateral.demo.agreement import DEMO_CALLER, write_signed_agreement
from lateral.rpc import insecure_channel
from policy.trust import PolicySection
from protos.lateral.v1 import adapter_pb2, adapter_pb2_grpc, broker_pb2, broker_pb2_grpc, common_pb2

metadata = sa.MetaData()
pupil = sa.Table(
    "pupil",
    metadata,
    sa.Column("upn", sa.String(13), primary_key=True),  # unique pupil number
    sa.Column("legal_forename", sa.String(60)),
    sa.Column("legal_surname", sa.String(60)),
    sa.Column("dob", sa.String(10)),  # stored as text by this MIS
    sa.Column("home_postcode", sa.String(8)),
)
attendance_event = sa.Table(
    "attendance_event",
    metadata,
    sa.Column("event_id", sa.Integer, primary_key=True),
    sa.Column("upn", sa.String(13), sa.ForeignKey("pupil.upn")),
    sa.Column("event_date", sa.Date),
    sa.Column(
        "event_code", sa.String(4)
    ),  # PA persistent absence, FX fixed-term exclusion, PX permanent, CME
    sa.Column("dsl_name", sa.String(60)),
    sa.Column("dsl_phone", sa.String(20)),
)


def join_education(agreement: TOMLDocument) -> None:
    """The schools join the partnership: a party holding the education agency, which P1 may ask."""
    parties = agreement["parties"]
    assert isinstance(parties, list)
    parties.append(
        {
            "id": "northshire-schools",
            "name": "Northshire Schools",
            "kind": "education",
            "certificate_identity": "spiffe://northshire/org/northshire-schools",
            "lawful_basis": ["UK GDPR Article 6(1)(e): Education Act 2002 s175"],
            "agencies": ["education"],
            "safeguarding_contact": {"name": "Education Safeguarding Team"},
        }
    )
    permissions = agreement["permissions"]
    assert isinstance(permissions, list)
    permissions[0]["agencies"].append("education")


CONFIG = """
[agency]
id = "education"
name = "Northshire Schools"

[source]
url = "sqlite:///education.db"

[policy]
agreement = "dsa.toml"

[mapping.people]
table = "pupil"
[mapping.people.columns]
record_key = "upn"
given_names = "legal_forename"
family_name = "legal_surname"
date_of_birth = "dob"
postcode = "home_postcode"

[mapping.events]
query = '''
SELECT upn AS record_key, event_date AS activity_date, event_code AS category,
       dsl_name AS contact_name, 'Designated Safeguarding Lead' AS contact_role, dsl_phone AS contact_phone
FROM attendance_event
'''

[vocabulary]
PA = "persistent-absence"
FX = "suspension"
PX = "permanent-exclusion"
CME = "child-missing-education"

[contact]
name = "Education Safeguarding Team"
phone = "01632 960500"
"""


async def test_education_agency_runs_on_the_unchanged_framework(tmp_path: Path) -> None:
    engine = sa.create_engine(f"sqlite:///{tmp_path / 'education.db'}")
    with engine.begin() as conn:
        metadata.create_all(conn)
        conn.execute(
            pupil.insert(),
            [
                {
                    "upn": "A123456789012",
                    "legal_forename": "Jayden",
                    "legal_surname": "Clarke",
                    "dob": "2012-03-14",
                    "home_postcode": "NT1 4QT",
                },
                {
                    "upn": "B123456789012",
                    "legal_forename": "Grace",
                    "legal_surname": "Adeyemi",
                    "dob": "2010-06-06",
                    "home_postcode": "NT2 3EE",
                },
            ],
        )
        conn.execute(
            attendance_event.insert(),
            [
                {
                    "upn": "A123456789012",
                    "event_date": dt.date(2026, 9, 30),
                    "event_code": "PA",
                    "dsl_name": "Ms Hughes",
                    "dsl_phone": "01632 960555",
                },
                {
                    "upn": "A123456789012",
                    "event_date": dt.date(2026, 10, 14),
                    "event_code": "FX",
                    "dsl_name": "Ms Hughes",
                    "dsl_phone": "01632 960555",
                },
            ],
        )
    engine.dispose()
    write_signed_agreement(tmp_path, amend=join_education)
    (tmp_path / "education.toml").write_text(CONFIG)
    config = load_adapter_config(tmp_path / "education.toml")

    adapter, adapter_port = await create_server(config, "127.0.0.1:0", insecure_dev=True)
    await adapter.start()
    broker, broker_port = await create_broker(
        BrokerConfig(
            policy=PolicySection(agreement=str(tmp_path / "dsa.toml")),
            agencies=[
                AgencyEndpoint(id="education", name="Northshire Schools", address=f"127.0.0.1:{adapter_port}")
            ],
        ),
        "127.0.0.1:0",
        insecure_dev=True,
    )
    await broker.start()
    try:
        async with insecure_channel(f"127.0.0.1:{adapter_port}") as channel:
            info = await adapter_pb2_grpc.AgencyAdapterStub(channel).Describe(adapter_pb2.DescribeRequest())
        assert (info.agency_id, info.person_count, info.activity_count) == ("education", 2, 2)
        assert list(info.categories) == [
            "child-missing-education",
            "permanent-exclusion",
            "persistent-absence",
            "suspension",
        ]

        request = broker_pb2.CheckRequest(
            subject=common_pb2.Subject(
                given_names=["Jayden"], family_name="Clarke", date_of_birth="2012-03-14"
            ),
            purpose="child-safeguarding",
            justification="Referral",
            case_ref="R1",
        )
        async with insecure_channel(f"127.0.0.1:{broker_port}") as channel:
            response = await broker_pb2_grpc.LateralCheckStub(channel).Check(
                request, timeout=5, metadata=DEMO_CALLER.metadata()
            )
        [row] = response.results
        assert row.agency_id == "education"
        assert row.finding == common_pb2.Finding(
            outcome=common_pb2.OUTCOME_KNOWN,
            categories=["suspension", "persistent-absence"],
            latest_activity_date="2026-10-14",
            activity_count=2,
            contact=common_pb2.Contact(
                name="Ms Hughes", role="Designated Safeguarding Lead", phone="01632 960555"
            ),
        )
    finally:
        await broker.stop(None)
        await adapter.stop(None)


def test_no_framework_module_names_an_agency() -> None:
    core = Path(__file__).resolve().parents[2] / "adapters" / "core"
    for path in core.glob("*.py"):
        text = path.read_text().lower()
        for agency in ("police", "fire", "nhs", "socialcare"):
            assert f"adapters.{agency}" not in text, f"{path.name} imports an agency package"
