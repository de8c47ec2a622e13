"""Fellegi–Sunter scoring: each field's comparison falls in a level with probabilities m (of that level
among true matches) and u (among non-matches); the evidence is the sum of log2(m/u).

Exact name and postcode agreement is term-frequency adjusted: u is the value's own frequency in this
agency's index, so "Smith" counts for less than "Okonkwo-Mensah". Defaults can be replaced per agency
(configuration) or estimated from the agency's own data (estimate.py).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field

from rapidfuzz.distance import DamerauLevenshtein, JaroWinkler

from adapters.core.index import Address, MatchIndex
from adapters.core.normalise import nickname_group, number_key, phonetic

# field -> level -> (m, u). u None: term frequency of the value in the index.
DEFAULT_LEVELS: dict[str, dict[str, tuple[float, float | None]]] = {
    "given": {
        "exact": (0.86, None),
        "middle": (0.02, 0.002),
        "nickname": (0.05, 0.002),
        "edit1": (0.04, 0.001),
        "ocr": (0.01, 0.0002),
        "jw92": (0.02, 0.003),
        "jw88": (0.01, 0.004),
        "edit2": (0.01, 0.0005),
        "phonetic": (0.01, 0.01),
        "initial": (0.005, 0.05),
        "different": (0.005, 0.93),
    },
    "family": {
        "exact": (0.85, None),
        "part": (0.02, 0.0005),
        "edit1": (0.04, 0.0008),
        "ocr": (0.01, 0.0002),
        "jw92": (0.02, 0.002),
        "jw88": (0.01, 0.004),
        "edit2": (0.01, 0.0004),
        "phonetic": (0.01, 0.01),
        "different": (0.05, 0.98),
        # Women's family names change on marriage far more often than men's.
        "different_female": (0.12, 0.98),
    },
    # Further given names (middle names), when both sides record some: one shared, or none.
    "other_given": {"agree": (0.9, None), "different": (0.1, 0.95)},
    # Given and family names each other's way round.
    "swapped": {"swapped": (0.01, 0.000001)},
    "dob": {
        "exact": (0.95, 0.000027),
        "swap": (0.01, 0.000027),
        "digit": (0.014, 0.0003),
        "year1": (0.003, 0.00007),
        "different": (0.023, 0.9996),
    },
    "gender": {"agree": (0.96, 0.5), "different": (0.02, 0.5)},
    "postcode": {
        "exact": (0.85, None),
        "sector": (0.02, 0.01),
        "district": (0.04, 0.2),
        "different": (0.09, 0.79),
        # A woman's changed family name usually comes with a move (marriage): not two independent surprises.
        "different_after_name_change": (0.6, 0.79),
    },
    # Without a postcode to compare, the address alone.
    "address": {"same": (0.8, 0.00005), "street": (0.03, 0.003), "different": (0.17, 0.997)},
    # With the postcode already agreeing: which of the unit's fifteen or so households.
    "address_in_postcode": {"same": (0.9, 0.1), "street": (0.03, 0.3), "different": (0.07, 0.6)},
    "nhs": {"exact": (0.99, 0.0000001), "different": (0.01, 0.9999999)},
    "uprn": {"exact": (0.9, 0.000001), "different": (0.1, 0.999999)},
}
# Levels that count as agreement for the decision rules: strong ones, and weak ones that need support.
STRONG_NAME = frozenset({"exact", "nickname", "edit1", "ocr", "jw92", "part"})
WEAK_NAME = frozenset({"middle", "jw88", "edit2", "phonetic"})
NAME_AGREES = STRONG_NAME | WEAK_NAME
DOB_AGREES = frozenset({"exact", "swap", "digit", "year1"})


@dataclass(frozen=True)
class Weights:
    """log2(m/u) for every level; term-frequency levels keep m and compute u from the index."""

    levels: Mapping[str, Mapping[str, tuple[float, float | None]]] = field(
        default_factory=lambda: DEFAULT_LEVELS
    )

    def weight(self, name: str, level: str, tf: float | None = None) -> float:
        m, u = self.levels[name][level]
        return math.log2(m / (u if u is not None else tf or 1e-6))


@dataclass(frozen=True)
class QueryFields:
    """A subject normalised the way index records are."""

    given: tuple[str, ...]
    family: str
    family_parts: tuple[str, ...]
    other_names: tuple[tuple[tuple[str, ...], str, tuple[str, ...]], ...]
    dob: int
    gender: int
    postcode: str
    address: Address
    nhs: str
    uprn: str


@dataclass
class Scored:
    row: int
    weight: float
    levels: dict[str, tuple[str, float]]

    def level(self, name: str) -> str:
        return self.levels.get(name, ("missing", 0.0))[0]


def _name_level(q: str, r: str) -> str:
    if q == r:
        return "exact"
    if r in nickname_group(q):
        return "nickname"
    shortest = min(len(q), len(r))
    # One keystroke (substitution, insertion, deletion or transposed pair) in a name of three letters or more.
    edits = DamerauLevenshtein.distance(q, r, score_cutoff=2)
    if edits == 1 and shortest >= 3:
        return "edit1"
    if edits == 2 and _ocr_fold(q) == _ocr_fold(r):
        return "ocr"
    jw = JaroWinkler.similarity(q, r)
    if jw >= 0.92:
        return "jw92"
    if jw >= 0.88:
        return "jw88"
    if edits == 2 and shortest >= 6:
        return "edit2"
    if (
        phonetic(q) == phonetic(r)
        or DamerauLevenshtein.distance(_sound_fold(q), _sound_fold(r), score_cutoff=1) <= 1
    ):
        return "phonetic"
    if (len(q) == 1 and r.startswith(q)) or (len(r) == 1 and q.startswith(r)):
        return "initial"
    return "different"


_OCR_FOLDS = (("rn", "m"), ("cl", "d"), ("li", "h"), ("vv", "w"))
# Spellings of one sound, folded to one: Dyer/Dieer, Hayes/Haiees, Philips/Fillips.
_SOUND_FOLDS = (
    ("ph", "f"),
    ("ck", "k"),
    ("ie", "y"),
    ("ee", "e"),
    ("ea", "e"),
    ("ai", "ay"),
    ("ou", "ow"),
    ("th", "t"),
    ("ah", "a"),
    ("z", "s"),
    ("c", "k"),
)


def _sound_fold(name: str) -> str:
    for spelling, sound in _SOUND_FOLDS:
        name = name.replace(spelling, sound)
    # Doubled letters written single.
    return "".join(c for i, c in enumerate(name) if i == 0 or c != name[i - 1])


def _ocr_fold(name: str) -> str:
    """Letter groups a scanner reads as one letter (rn/m, cl/d, li/h, vv/w), folded to that letter."""
    for group, letter in _OCR_FOLDS:
        name = name.replace(group, letter)
    return name


def given_level(q: tuple[str, ...], r: tuple[str, ...]) -> str:
    """First given names compared; a middle name used as the first counts too."""
    if not q or not r:
        return "missing"
    level = _name_level(q[0], r[0])
    if level == "different" and (q[0] in r[1:] or r[0] in q[1:]):
        return "middle"
    return level


def family_level(q: str, q_parts: tuple[str, ...], r: str, r_parts: tuple[str, ...]) -> str:
    if not q or not r:
        return "missing"
    if q == r:
        return "exact"
    # A double-barrelled name recorded as one of its parts.
    if (len(q_parts) > 1 or len(r_parts) > 1) and set(q_parts) & set(r_parts):
        return "part"
    level = _name_level(q, r)
    return "different" if level in ("nickname", "initial") else level


def dob_level(q: int, r: int) -> str:
    if not q or not r:
        return "missing"
    if q == r:
        return "exact"
    qy, qm, qd = q // 10_000, q // 100 % 100, q % 100
    ry, rm, rd = r // 10_000, r // 100 % 100, r % 100
    if qy == ry and qm == rd and qd == rm:
        return "swap"
    if sum(a != b for a, b in zip(f"{q:08d}", f"{r:08d}", strict=True)) == 1:
        return "digit"
    if qm == rm and qd == rd and abs(qy - ry) == 1:
        return "year1"
    return "different"


def postcode_level(q: str, r: str) -> str:
    if not q or not r:
        return "missing"
    if q == r:
        return "exact"
    q_out, _, q_in = q.partition(" ")
    r_out, _, r_in = r.partition(" ")
    if q_out != r_out:
        return "different"
    if q_in and r_in and q_in[0] == r_in[0]:
        return "sector"
    return "district"


def address_level(q: Address, r: Address) -> str:
    (q_number, q_street), (r_number, r_street) = q, r
    if not q_street or not r_street:
        return "missing"
    overlap = len(q_street & r_street) / len(q_street | r_street)
    if overlap < 0.5:
        return "different"
    return "same" if q_number and q_number == r_number else "street"


class Scorer:
    """Scores query fields against index rows."""

    def __init__(self, index: MatchIndex, weights: Weights | None = None) -> None:
        self.index = index
        self.weights = weights or Weights()
        self._n = max(1, index.record_count)

    def _tf(self, counts: Mapping[str, int], value: str) -> float:
        return max(1, counts.get(value, 0)) / self._n

    def _names(self, q: QueryFields, row: int) -> tuple[str, str, float, float, bool]:
        """Best (given level, family level, weights, swapped) over the record's names and aliases."""
        idx, w = self.index, self.weights
        r_names = [(idx.given[row], idx.family[row], idx.family_parts[row])]
        r_names += [(g, f, (f,)) for g, f in idx.aliases.get(row, ())]
        q_names = [(q.given, q.family, q.family_parts), *q.other_names]
        female = q.gender == 1 or int(idx.gender[row]) == 1
        best: tuple[str, str, float, float, bool] | None = None
        for qg, qf, qp in q_names:
            for rg, rf, rp in r_names:
                g = given_level(qg, rg)
                f = family_level(qf, qp, rf, rp)
                if f == "different" and female:
                    f = "different_female"
                gw = 0.0 if g == "missing" else w.weight("given", g, self._tf(idx.given_counts, rg[0]))
                fw = 0.0 if f == "missing" else w.weight("family", f, self._tf(idx.family_counts, rf))
                if best is None or gw + fw > best[2] + best[3]:
                    best = (g, f, gw, fw, False)
        assert best is not None
        # Given and family names recorded the wrong way round.
        r_given = idx.given[row]
        swapped_family = q.family in (r_given[0], "".join(r_given)) if r_given else False
        if best[0] != "exact" and q.given and q.given[0] == idx.family[row] and swapped_family:
            sw = w.weight("swapped", "swapped")
            if sw > best[2] + best[3]:
                best = ("swapped", "swapped", sw, 0.0, True)
        return best

    def _other_given(self, q: QueryFields, row: int) -> tuple[str, float] | None:
        """Middle names compared, when both sides record some (a middle name used as the first is the given
        name's own "middle" level, not counted again here)."""
        q_other, r_other = set(q.given[1:]), set(self.index.given[row][1:])
        if not q_other or not r_other:
            return None
        shared = q_other & r_other
        if not shared:
            return "different", self.weights.weight("other_given", "different")
        tf = min(self._tf(self.index.middle_counts, name) for name in shared)
        return "agree", self.weights.weight("other_given", "agree", tf)

    def score(self, q: QueryFields, row: int) -> Scored:
        idx, w = self.index, self.weights
        levels: dict[str, tuple[str, float]] = {}
        g, f, gw, fw, swapped = self._names(q, row)
        if swapped:
            levels["swapped"] = ("swapped", gw)
        else:
            if g != "missing":
                levels["given"] = (g, gw)
            if f != "missing":
                levels["family"] = (f, fw)
        if g not in ("middle", "missing", "swapped"):
            other = self._other_given(q, row)
            if other is not None:
                levels["other_given"] = other
        dob = dob_level(q.dob, int(idx.dob[row]))
        if dob != "missing":
            levels["dob"] = (dob, w.weight("dob", dob))
        r_gender = int(idx.gender[row])
        if q.gender and r_gender:
            level = "agree" if q.gender == r_gender else "different"
            levels["gender"] = (level, w.weight("gender", level))
        pc = postcode_level(q.postcode, idx.postcode[row])
        if pc != "missing":
            table_level = (
                "different_after_name_change" if pc == "different" and f == "different_female" else pc
            )
            weight = w.weight("postcode", table_level, self._tf(idx.postcode_counts, idx.postcode[row]))
            levels["postcode"] = (pc, weight)
        # One location, not two facts: a different postcode already says the address differs, and an agreeing
        # postcode leaves only which of its households.
        address = address_level(q.address, idx.address_of(row)) if idx.address[row] else "missing"
        if address != "missing" and pc != "different":
            table = "address_in_postcode" if pc == "exact" else "address"
            levels["address"] = (address, w.weight(table, address))
        for name, value, stored in (("nhs", q.nhs, int(idx.nhs[row])), ("uprn", q.uprn, int(idx.uprn[row]))):
            if value and stored:
                level = "exact" if number_key(value) == stored else "different"
                levels[name] = (level, w.weight(name, level))
        return Scored(row, sum(weight for _, weight in levels.values()), levels)
