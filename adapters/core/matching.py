"""Deciding whether a subject is one of the agency's people.

1. Retrieve candidates by several blocking keys, so that any single recording error leaves one intact.
2. Score each candidate (scoring.py) and turn the evidence into a probability, with a prior of one true
   record among all the agency's records.
3. Decide. KNOWN needs a high probability *and* agreement on a given name, a family name (or alias) and the
   date of birth (or the NHS number), and no conflicting location: the same name and date of birth at an
   address in another district may be someone else, so that is POSSIBLE until an identifier settles it.
   Candidates close to the best that are a different person (not a duplicate record of the same one) make
   the answer POSSIBLE too, naming the attributes that would separate them.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from adapters.core.index import MatchIndex, short_hash, value_hash
from adapters.core.normalise import (
    address_key,
    date_key,
    family_key,
    formal_names,
    given_tokens,
    name_tokens,
    nhs_key,
    number_key,
    phonetic,
    postcode_key,
)
from adapters.core.scoring import (
    DOB_AGREES,
    NAME_AGREES,
    STRONG_NAME,
    WEAK_NAME,
    QueryFields,
    Scored,
    Scorer,
    Weights,
    given_level,
)
from protos.lateral.v1 import common_pb2

KNOWN = common_pb2.OUTCOME_KNOWN
POSSIBLE = common_pb2.OUTCOME_POSSIBLE
NOT_KNOWN = common_pb2.OUTCOME_NOT_KNOWN
# Above this many candidates, a vectorised first cut keeps the most plausible for full scoring: a common
# surname and birth year can block together hundreds of records in a million.
SHORTLIST = 16
_GENDER = {common_pb2.GENDER_FEMALE: 1, common_pb2.GENDER_MALE: 2, common_pb2.GENDER_OTHER: 3}


@dataclass(frozen=True)
class Thresholds:
    """Posterior probabilities for KNOWN and POSSIBLE; how close (in bits) another person must be to
    make the answer ambiguous."""

    known: float = 0.999
    # One chance in five is worth a call: a POSSIBLE discloses nothing, and at 0.5 a woman recorded under her
    # maiden name, or a record without a date of birth, was missed at a million records (docs/matching.md).
    possible: float = 0.2
    ambiguity_bits: float = 6.0


@dataclass(frozen=True)
class Candidate:
    """One scored record, for the admin's explanation (never sent across the federation)."""

    record_key: str
    probability: float
    weight: float
    levels: tuple[tuple[str, str, float], ...]

    def describe(self) -> str:
        fields = ", ".join(f"{name} {level} {weight:+.1f}" for name, level, weight in self.levels)
        return f"{self.record_key} p={self.probability:.6f} ({self.weight:+.1f} bits: {fields})"


@dataclass(frozen=True)
class MatchResult:
    """The local decision. Record keys, rows, score and explanation stay inside the agency."""

    outcome: common_pb2.Outcome.ValueType
    record_keys: tuple[str, ...] = ()
    score: float = 0.0
    resolving_attributes: tuple[common_pb2.Attribute.ValueType, ...] = ()
    explanation: str = ""
    rows: tuple[int, ...] = ()
    candidates: tuple[Candidate, ...] = ()


def query_fields(subject: common_pb2.Subject) -> QueryFields:
    """Normalises a validated subject like the index normalises records."""
    others = tuple(
        (given_tokens(list(o.given_names)), family_key(o.family_name), name_tokens(o.family_name))
        for o in subject.other_names
    )
    address = " ".join(subject.address.lines)
    return QueryFields(
        given=given_tokens(list(subject.given_names)),
        family=family_key(subject.family_name),
        family_parts=name_tokens(subject.family_name),
        other_names=others,
        dob=date_key(subject.date_of_birth),
        gender=_GENDER.get(subject.gender, 0),
        postcode=postcode_key(subject.address.postcode),
        address=address_key(address) if address else ("", frozenset()),
        nhs=nhs_key(subject.nhs_number),
        uprn=subject.address.uprn,
    )


def record_fields(index: MatchIndex, row: int) -> QueryFields:
    """A record's own fields as a query (comparing records with each other: duplicates, estimation)."""
    return QueryFields(
        given=index.given[row],
        family=index.family[row],
        family_parts=index.family_parts[row],
        other_names=tuple((g, f, (f,)) for g, f in index.aliases.get(row, ())),
        dob=int(index.dob[row]),
        gender=int(index.gender[row]),
        postcode=index.postcode[row],
        address=index.address_of(row),
        nhs=str(index.nhs[row]) if index.nhs[row] else "",
        uprn=str(index.uprn[row]) if index.uprn[row] else "",
    )


class Matcher:
    """Matches subjects against one index. Cheap to create; create one per index."""

    def __init__(
        self, index: MatchIndex, thresholds: Thresholds | None = None, weights: Weights | None = None
    ) -> None:
        self.index = index
        self.thresholds = thresholds or Thresholds()
        self.scorer = Scorer(index, weights)
        # One true record among all of them.
        self._prior = -math.log2(max(2, index.record_count))

    def probability(self, weight: float) -> float:
        return 1.0 / (1.0 + math.pow(2.0, -(weight + self._prior)))

    def candidates(self, q: QueryFields) -> npt.NDArray[np.int32]:
        """Rows sharing at least one blocking key with the query."""
        idx = self.index
        found = []
        names: list[tuple[tuple[str, ...], str]] = [(q.given, q.family)]
        names += [(g, f) for g, f, _ in q.other_names]
        if q.given:  # a record with the names the other way round
            names.append(((q.family,), q.given[0]))
        for given, family in names:
            sound = phonetic(family)
            first = given[0] if given else ""
            if sound:
                sounds = f"{sound}|{phonetic(first)}"
                rows = idx.lookup("names", sounds)
                # Records without a date of birth are found by name; others have sharper keys.
                found.append(rows if not q.dob else rows[idx.dob[rows] == 0])
            if q.dob:
                if sound:
                    found.append(idx.lookup("family_dob", sound, q.dob))
                    found.append(idx.lookup("names_year", sounds, q.dob // 10_000))
                    found.append(idx.lookup("names_monthday", sounds, q.dob % 10_000))
                for formal in formal_names(first) if first else ():
                    found.append(idx.lookup("given_dob", formal, q.dob))
        if q.postcode and " " in q.postcode:
            if q.dob:
                found.append(idx.lookup("postcode_dob", q.postcode, q.dob))
            found.append(self._at_postcode(q, names))
        if q.nhs:
            found.append(idx.lookup("nhs", "", number_key(q.nhs)))
        if q.uprn:
            found.append(idx.lookup("uprn", "", number_key(q.uprn)))
        if not found:
            return np.zeros(0, dtype=np.int32)
        rows = np.unique(np.concatenate(found))
        if idx.any_deleted:
            rows = rows[~idx.deleted[rows]]
        if len(rows) > SHORTLIST:
            rows = self._shortlist(q, rows)
            if idx.any_deleted:
                rows = rows[~idx.deleted[rows]]
        return rows

    def _at_postcode(self, q: QueryFields, names: list[tuple[tuple[str, ...], str]]) -> npt.NDArray[np.int32]:
        """Records at the query's postcode that could be the subject with a name and the date of birth both
        mistyped, or the date missing: sharing the family name's sound or a formal given name, and either
        sharing the year or the day and month of birth, or (where either has no date) a given name near the
        query's. The household's other members differ in given name and date, and are left out."""
        idx = self.index
        found = []
        for given, family in names:
            sound = phonetic(family)
            if sound:
                found.append(idx.lookup("postcode_family", q.postcode, value_hash(sound)))
            for formal in formal_names(given[0]) if given else ():
                found.append(idx.lookup("postcode_given", q.postcode, value_hash(formal)))
        rows = np.unique(np.concatenate(found)) if found else np.zeros(0, dtype=np.int32)
        dob = idx.dob[rows]
        dated = (dob != 0) & (q.dob != 0)
        same_part = (dob // 10_000 == q.dob // 10_000) | (dob % 10_000 == q.dob % 10_000)
        undated = rows[~dated]
        near = [
            r for r in undated.tolist() if given_level(q.given, idx.given[r]) not in ("different", "missing")
        ]
        kept: npt.NDArray[np.int32] = np.concatenate(
            [rows[dated & same_part], np.array(near, dtype=np.int32)]
        )
        return kept

    def _shortlist(self, q: QueryFields, rows: npt.NDArray[np.int32]) -> npt.NDArray[np.int32]:
        """The SHORTLIST rows agreeing most on cheap exact comparisons, plus any sharing an identifier.

        A true record with any single recording error still agrees on most of these, so it stays.
        """
        idx = self.index
        dob = idx.dob[rows]
        family = np.uint32(short_hash(q.family))
        given = np.uint32(short_hash(q.given[0] if q.given else ""))
        families, givens = idx.family_hash[rows], idx.given_hash[rows]
        given_agrees = (givens == given) & (given != 0)
        names = np.maximum(
            4 * (families == family) + 4 * given_agrees,
            4 * ((families == given) & (given != 0)) + 4 * (givens == family),  # recorded the other way round
        )
        cheap = (
            names
            + 6 * (dob == q.dob)
            + 2 * (dob // 10_000 == q.dob // 10_000)
            + 2 * (dob % 10_000 == q.dob % 10_000)
        )
        if q.postcode:  # an empty query field must not "agree" with records that lack it too
            cheap = cheap + 3 * (idx.postcode_hash[rows] == np.uint32(short_hash(q.postcode)))
        keep = rows[np.argpartition(-cheap, SHORTLIST)[:SHORTLIST]]
        sure = [idx.lookup("nhs", "", number_key(q.nhs))] if q.nhs else []
        sure += [idx.lookup("uprn", "", number_key(q.uprn))] if q.uprn else []
        return np.unique(np.concatenate([keep, *sure]))

    def _decisive(self, s: Scored) -> bool:
        """Agreement strong enough to disclose.

        An identifier (NHS number, or UPRN with date of birth) settles it. Otherwise given name, family name
        and date of birth must all agree, at most one of them only nearly (a weak family-name level, or a date
        of birth one digit or a swap away), and a near agreement needs the address to agree as well. The given
        name must agree strongly: a household shares its address, family name and (twins) date of birth, so
        only the given name tells its members apart. The same name and date of birth recorded in another
        district is never enough: that may be someone else.
        """
        given, family, dob = s.level("given"), s.level("family"), s.level("dob")
        if s.level("nhs") == "exact" and (family in NAME_AGREES or dob in DOB_AGREES):
            return True
        if s.level("uprn") == "exact" and dob in DOB_AGREES and given in NAME_AGREES:
            return True
        postcode, address = s.level("postcode"), s.level("address")
        if postcode == "different" or (postcode == "missing" and address == "different"):
            return False
        if dob not in DOB_AGREES:
            return False
        if s.level("swapped") == "swapped":
            near = 0
        elif given in STRONG_NAME and family in NAME_AGREES:
            near = int(family in WEAK_NAME)
        else:
            return False
        near += dob != "exact"
        located = postcode in ("exact", "sector") or address == "same"
        return near == 0 or (near == 1 and located)

    def _same_person(self, a: int, b: int) -> bool:
        """Whether two records of this agency are one person recorded twice."""
        s = self.scorer.score(record_fields(self.index, a), b)
        return self.probability(s.weight) >= self.thresholds.known and self._decisive(s)

    def _resolving(
        self, q: QueryFields, best: Scored, rows: list[int]
    ) -> tuple[common_pb2.Attribute.ValueType, ...]:
        idx = self.index
        out: list[common_pb2.Attribute.ValueType] = []
        if not q.dob and any(idx.dob[r] for r in rows):
            out.append(common_pb2.ATTRIBUTE_DATE_OF_BIRTH)
        if not q.nhs and any(int(idx.nhs[r]) for r in rows):
            out.append(common_pb2.ATTRIBUTE_NHS_NUMBER)
        if not q.postcode and any(idx.postcode[r] for r in rows):
            out.append(common_pb2.ATTRIBUTE_POSTCODE)
        if not q.address[1] and any(idx.address[r] for r in rows):
            out.append(common_pb2.ATTRIBUTE_ADDRESS)
        if not q.gender and len({int(idx.gender[r]) for r in rows}) > 1:
            out.append(common_pb2.ATTRIBUTE_GENDER)
        if best.level("family") == "different" and not q.other_names:
            out.append(common_pb2.ATTRIBUTE_OTHER_NAMES)
        return tuple(out)

    def _candidate(self, s: Scored) -> Candidate:
        levels = tuple((name, level, weight) for name, (level, weight) in s.levels.items())
        return Candidate(self.index.keys[s.row], self.probability(s.weight), s.weight, levels)

    def match_fields(self, q: QueryFields) -> MatchResult:
        return self.judge(q, self.candidates(q))

    def judge(self, q: QueryFields, retrieved: npt.NDArray[np.int32]) -> MatchResult:
        """Scores the candidate rows retrieved for q and decides KNOWN, POSSIBLE or NOT_KNOWN."""
        t = self.thresholds
        scored = sorted((self.scorer.score(q, int(r)) for r in retrieved), key=lambda s: -s.weight)
        shown = tuple(self._candidate(s) for s in scored[:3])
        if not scored or self.probability(scored[0].weight) < t.possible:
            why = f"best candidate {shown[0].describe()}" if shown else "no candidate shares a blocking key"
            return MatchResult(NOT_KNOWN, explanation=why, candidates=shown)
        best = scored[0]
        p = self.probability(best.weight)
        close = [s for s in scored[1:] if self.probability(s.weight) >= t.possible]
        same = [best] + [s for s in close if self._same_person(best.row, s.row)]
        rivals = [s for s in close if s not in same and s.weight >= best.weight - t.ambiguity_bits]
        if p >= t.known and self._decisive(best) and not rivals:
            rows = tuple(s.row for s in same)
            return MatchResult(
                KNOWN,
                tuple(self.index.keys[r] for r in rows),
                p,
                explanation=f"KNOWN: {shown[0].describe()}",
                rows=rows,
                candidates=shown,
            )
        rows_considered = [s.row for s in [*same, *rivals]]
        reason = (
            "another person scores close"
            if rivals
            else "agreement short of a disclosure (names, date of birth and location must all agree)"
            if p >= t.known
            else "probability between the thresholds"
        )
        return MatchResult(
            POSSIBLE,
            tuple(self.index.keys[r] for r in rows_considered),
            p,
            self._resolving(q, best, rows_considered),
            explanation=f"POSSIBLE ({reason}): {shown[0].describe()}",
            rows=tuple(rows_considered),
            candidates=shown,
        )

    def match(self, subject: common_pb2.Subject) -> MatchResult:
        return self.match_fields(query_fields(subject))
