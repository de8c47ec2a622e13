"""What may cross the federation: every field of every response, walked from the descriptors.

A response never carries a demographic field, a local record id or a match score. New fields must be
added to ALLOWED on purpose, after asking whether they could identify someone.
"""

import subprocess
import sys
from pathlib import Path

from google.protobuf.descriptor import Descriptor, FieldDescriptor

from protos.lateral.v1 import adapter_pb2, broker_pb2, common_pb2, linkage_pb2

ROOT = Path(__file__).resolve().parents[2]

RESPONSES: list[Descriptor] = [
    broker_pb2.CheckResponse.DESCRIPTOR,
    broker_pb2.ListAgenciesResponse.DESCRIPTOR,
    broker_pb2.BulkResult.DESCRIPTOR,
    adapter_pb2.MatchResponse.DESCRIPTOR,
    adapter_pb2.DescribeResponse.DESCRIPTOR,
    broker_pb2.StatusResponse.DESCRIPTOR,
    broker_pb2.ListReviewCandidatesResponse.DESCRIPTOR,
    linkage_pb2.HoldingsResponse.DESCRIPTOR,
    linkage_pb2.PublishResponse.DESCRIPTOR,
    linkage_pb2.ListCandidatesResponse.DESCRIPTOR,
    linkage_pb2.CandidateMembersResponse.DESCRIPTOR,
]
# The one sanctioned exception (docs/proactive.md): who a review candidate is, released by an agency whose
# copy of the agreement permits 'identity' for a proactive purpose, to the organisation that asked.
IDENTITY_ANSWERS = {"ReviewResponse.rows.identity", "ReidentifyResponse.identity"}
# Message types that carry someone's identity: they may travel towards an agency, never back.
IDENTIFYING_TYPES = {
    common_pb2.Subject.DESCRIPTOR.full_name,
    common_pb2.PersonName.DESCRIPTOR.full_name,
    common_pb2.Address.DESCRIPTOR.full_name,
}
FORBIDDEN_WORDS = (
    "given",
    "family",
    "surname",
    "forename",
    "birth",
    "dob",
    "gender",
    "sex",
    "address",
    "postcode",
    "uprn",
    "nhs",
    "record",
    "score",
    "key",
    "subject",
    "alias",
    "candidate",
    "weight",
    "probability",
)
ALLOWED = {
    "CheckResponse.check_id",
    "CheckResponse.checked_at",
    "CheckResponse.checked_at.seconds",
    "CheckResponse.checked_at.nanos",
    "CheckResponse.results",
    "CheckResponse.results.agency_id",
    "CheckResponse.results.agency_name",
    "CheckResponse.results.finding",
    "CheckResponse.results.finding.outcome",
    "CheckResponse.results.finding.categories",
    "CheckResponse.results.finding.latest_activity_date",
    "CheckResponse.results.finding.activity_count",
    "CheckResponse.results.finding.contact",
    "CheckResponse.results.finding.contact.name",
    "CheckResponse.results.finding.contact.role",
    "CheckResponse.results.finding.contact.phone",
    "CheckResponse.results.finding.contact.email",
    "CheckResponse.results.finding.resolving_attributes",
    "CheckResponse.results.finding.people_count",
    "CheckResponse.results.status",
    "CheckResponse.results.status.code",
    "CheckResponse.results.status.detail",
    "CheckResponse.results.status.elapsed_ms",
    "CheckResponse.results.status.reason",
    "CheckResponse.results.status.clause_ids",
    "CheckResponse.agreement",
    "CheckResponse.agencies_with_activity",
    "CheckResponse.agencies_with_recent_activity",
    "CheckResponse.review_window_days",
    "CheckResponse.review_required",
    "CheckResponse.review_reasons",
    "CheckResponse.review_reasons.rule_id",
    "CheckResponse.review_reasons.description",
    "ListAgenciesResponse.agencies",
    "ListAgenciesResponse.agencies.agency_id",
    "ListAgenciesResponse.agencies.agency_name",
    "ListAgenciesResponse.purposes",
    "ListAgenciesResponse.purposes.purpose_id",
    "ListAgenciesResponse.purposes.description",
    "ListAgenciesResponse.purposes.requires_case_ref",
    "ListAgenciesResponse.purposes.requires_justification",
    "ListAgenciesResponse.purposes.scope",
    "ListAgenciesResponse.purposes.checks",
    "MatchResponse.clause_ids",
    "MatchResponse.agency_id",
    "MatchResponse.finding",
    "MatchResponse.finding.outcome",
    "MatchResponse.finding.categories",
    "MatchResponse.finding.latest_activity_date",
    "MatchResponse.finding.activity_count",
    "MatchResponse.finding.contact",
    "MatchResponse.finding.contact.name",
    "MatchResponse.finding.contact.role",
    "MatchResponse.finding.contact.phone",
    "MatchResponse.finding.contact.email",
    "MatchResponse.finding.resolving_attributes",
    "MatchResponse.finding.people_count",
    "DescribeResponse.agency_id",
    "DescribeResponse.agency_name",
    "DescribeResponse.adapter_version",
    "DescribeResponse.record_count",
    "DescribeResponse.person_count",
    "DescribeResponse.activity_count",
    "DescribeResponse.index_built_at",
    "DescribeResponse.index_built_at.seconds",
    "DescribeResponse.index_built_at.nanos",
    "DescribeResponse.source_watermark",
    "DescribeResponse.categories",
    "DescribeResponse.index_refreshed_at",
    "DescribeResponse.index_refreshed_at.seconds",
    "DescribeResponse.index_refreshed_at.nanos",
    "DescribeResponse.source_status",
    "DescribeResponse.source_detail",
    "DescribeResponse.agreement",
}
# Proactive identification: candidates are pseudonyms of linked records (a candidate id, the agencies'
# tokens, the encodings' digests), with agencies, dates, categories and reasons; never who.
ALLOWED |= {
    "ListReviewCandidatesResponse.candidates",
    "ListReviewCandidatesResponse.candidates.candidate_id",
    "ListReviewCandidatesResponse.candidates.priority",
    "ListReviewCandidatesResponse.candidates.reasons",
    "ListReviewCandidatesResponse.candidates.agencies",
    *(
        f"ListReviewCandidatesResponse.candidates.agencies.{name}"
        for name in ("agency_id", "agency_name", "latest_activity_date", "categories", "activity_count")
    ),
    "ListReviewCandidatesResponse.linked_at",
    "ListReviewCandidatesResponse.linked_at.seconds",
    "ListReviewCandidatesResponse.linked_at.nanos",
    "ListReviewCandidatesResponse.agreement",
    "HoldingsResponse.holdings",
    "HoldingsResponse.holdings.token",
    "HoldingsResponse.holdings.digest",
    "PublishResponse.held",
    "PublishResponse.removed",
    "ListCandidatesResponse.candidates",
    "ListCandidatesResponse.candidates.candidate_id",
    "ListCandidatesResponse.candidates.priority",
    "ListCandidatesResponse.candidates.reasons",
    "ListCandidatesResponse.candidates.agencies",
    *(
        f"ListCandidatesResponse.candidates.agencies.{name}"
        for name in ("agency_id", "latest_activity_date", "categories", "activity_count")
    ),
    "ListCandidatesResponse.linked_at",
    "ListCandidatesResponse.linked_at.seconds",
    "ListCandidatesResponse.linked_at.nanos",
    "ListCandidatesResponse.key_id",
    "ListCandidatesResponse.encodings",
    "ListCandidatesResponse.encodings.key",
    "ListCandidatesResponse.encodings.value",
    "CandidateMembersResponse.key_id",
    "CandidateMembersResponse.members",
    "CandidateMembersResponse.members.agency_id",
    "CandidateMembersResponse.members.token",
}
# Pseudonyms and keys' ids, not identities: allowed despite their names.
PSEUDONYMS = {"candidates", "candidate_id", "key_id", "key", "members", "retire_other_keys"}
# A bulk result carries one check's response, and why an item was not answered.
ALLOWED |= {"BulkResult.item_id", "BulkResult.error", "BulkResult.error.code", "BulkResult.error.message"}
ALLOWED |= {
    p.replace("CheckResponse", "BulkResult.response", 1) for p in ALLOWED if p.startswith("CheckResponse")
}
ALLOWED.add("BulkResult.response")
# The federation's status (operators): the broker's own state and each adapter's health and Describe.
ALLOWED |= {
    "StatusResponse.broker_version",
    "StatusResponse.agreement",
    "StatusResponse.agreement_review_by",
    "StatusResponse.started_at",
    "StatusResponse.started_at.seconds",
    "StatusResponse.started_at.nanos",
    "StatusResponse.audit_events",
    "StatusResponse.audit_checkpoint_at",
    "StatusResponse.audit_checkpoint_at.seconds",
    "StatusResponse.audit_checkpoint_at.nanos",
    "StatusResponse.agencies",
    *(
        f"StatusResponse.agencies.{name}"
        for name in ("agency_id", "agency_name", "endpoint", "health", "source_health", "round_trip_ms")
    ),
    "StatusResponse.agencies.detail",
    "StatusResponse.agencies.circuit",
    "StatusResponse.agencies.describe",
}
ALLOWED |= {
    p.replace("DescribeResponse", "StatusResponse.agencies.describe", 1)
    for p in ALLOWED
    if p.startswith("DescribeResponse.")
}
# Aggregate counts about the whole index, not about anyone: allowed despite their names.
AGGREGATES = {
    "DescribeResponse.record_count",
    "DescribeResponse.person_count",
    "StatusResponse.agencies.describe.record_count",
    "StatusResponse.agencies.describe.person_count",
}
# The one place an attribute *name* (not value) crosses: what would resolve a POSSIBLE.
ATTRIBUTE_NAMES = {"resolving_attributes"}


def walk(descriptor: Descriptor, path: str, seen: tuple[str, ...] = ()) -> list[tuple[str, FieldDescriptor]]:
    out = []
    for field in descriptor.fields:
        here = f"{path}.{field.name}"
        out.append((here, field))
        if field.message_type is not None and field.message_type.full_name not in seen:
            out += walk(field.message_type, here, (*seen, descriptor.full_name))
    return out


def all_fields() -> list[tuple[str, FieldDescriptor]]:
    return [f for response in RESPONSES for f in walk(response, response.name)]


def test_no_response_embeds_an_identifying_message() -> None:
    carriers = [
        p for p, f in all_fields() if f.message_type and f.message_type.full_name in IDENTIFYING_TYPES
    ]
    assert carriers == []


def test_no_response_field_is_named_like_a_demographic_record_id_or_score() -> None:
    suspicious = [
        path
        for path, field in all_fields()
        if path not in AGGREGATES
        and field.name not in ATTRIBUTE_NAMES
        and field.name not in PSEUDONYMS
        and any(word in field.name for word in FORBIDDEN_WORDS)
    ]
    assert suspicious == []


def test_every_response_field_is_reviewed() -> None:
    paths = {p for p, _ in all_fields()}
    assert paths - ALLOWED == set(), "new response fields: review them for personal data, then allow them"
    assert ALLOWED - paths == set(), "ALLOWED lists fields that no longer exist"


def test_identity_crosses_only_in_a_review_answer_in_its_identity_field() -> None:
    """Every message of every service: an identifying message is carried back only by the review answers
    (and requests carry it towards agencies, as checks do)."""
    carried = set()
    for module in (adapter_pb2, broker_pb2, linkage_pb2):
        for service in module.DESCRIPTOR.services_by_name.values():
            for method in service.methods:
                output = method.output_type
                carried |= {
                    p
                    for p, f in walk(output, output.name)
                    if f.message_type and f.message_type.full_name in IDENTIFYING_TYPES
                }
    outermost = {p for p in carried if not any(p.startswith(f"{q}.") for q in carried)}
    assert outermost == IDENTITY_ANSWERS


def test_the_linkage_service_is_never_sent_an_identity() -> None:
    """Nothing an adapter or the broker sends the linkage service can hold a name, a date of birth, an
    address or an NHS number: no identifying message, and no field named like one."""
    sent = [
        (p, f)
        for method in linkage_pb2.DESCRIPTOR.services_by_name["Linkage"].methods
        for p, f in walk(method.input_type, method.input_type.name)
    ]
    assert [p for p, f in sent if f.message_type and f.message_type.full_name in IDENTIFYING_TYPES] == []
    named = [p for p, f in sent if any(w in f.name for w in FORBIDDEN_WORDS) and f.name not in PSEUDONYMS]
    assert named == []


def test_contact_is_the_only_person_like_message_and_holds_only_work_details() -> None:
    assert [f.name for f in common_pb2.Contact.DESCRIPTOR.fields] == ["name", "role", "phone", "email"]


def test_enums_start_with_unspecified_zero() -> None:
    for module in (common_pb2, broker_pb2, adapter_pb2):
        for enum in module.DESCRIPTOR.enum_types_by_name.values():
            assert enum.values[0].number == 0
            assert enum.values[0].name.endswith("_UNSPECIFIED")


def test_generated_code_is_up_to_date() -> None:
    result = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "gen_protos.py"), "--check"], capture_output=True, text=True
    )
    assert result.returncode == 0, result.stderr
