"""Addresses in a fictional pair of towns: valid-format postcodes clustered in a few districts, UPRNs."""

from __future__ import annotations

import itertools
import random
import zlib
from dataclasses import dataclass

# (town, district, share of households). The "NT" area is fictional; the format is a real UK one.
DISTRICTS = (
    ("Northtown", "NT1", 0.28),
    ("Northtown", "NT2", 0.24),
    ("Northtown", "NT3", 0.18),
    ("Northtown", "NT4", 0.12),
    ("Eastbridge", "NT5", 0.12),
    ("Eastbridge", "NT6", 0.06),
)
# Unit letters never use C, I, K, M, O or V (Royal Mail).
UNIT_LETTERS = "ABDEFGHJLNPQRSTUWXYZ"
_STREET_NAMES = (
    "High",
    "Church",
    "Station",
    "Victoria",
    "Mill",
    "Park",
    "Brook",
    "Cedar",
    "Albion",
    "Heath",
    "Orchard",
    "King",
    "Queen",
    "Manor",
    "Green",
    "Chapel",
    "School",
    "Grove",
    "Meadow",
    "Willow",
    "Oak",
    "Ash",
    "Beech",
    "Elm",
    "Canal",
    "Bridge",
    "Castle",
    "Windsor",
    "York",
    "Princess",
    "Albert",
    "Spring",
    "Hill",
    "Field",
    "Forge",
    "Market",
    "Priory",
    "Abbey",
    "Wellington",
    "Nelson",
    "Jubilee",
    "Coronation",
    "Stafford",
    "Lichfield",
    "Birch",
    "Rowan",
    "Hawthorn",
    "Holly",
    "Sycamore",
    "Poplar",
    "Chestnut",
    "Laurel",
)
_STREET_KINDS = ("Street", "Road", "Lane", "Close", "Avenue", "Way", "Drive", "Court", "Crescent", "Place")
UPRN_BASE = 100_070_000_000


@dataclass(frozen=True, slots=True)
class Address:
    line: str
    town: str
    postcode: str
    uprn: str


@dataclass(frozen=True, slots=True)
class _Street:
    name: str
    town: str
    district: str
    sector: int
    houses: int


class AddressBook:
    """Hands out distinct household addresses; the same seed gives the same addresses in the same order."""

    def __init__(self, rng: random.Random, households: int) -> None:
        self._rng = rng
        self._next_uprn = UPRN_BASE
        self._used: set[tuple[str, str]] = set()
        weights = [share for _, _, share in DISTRICTS]
        # Enough streets of 20 to 200 houses that addresses rarely repeat.
        self._streets: list[_Street] = []
        names = [f"{n} {k}" for n in _STREET_NAMES for k in _STREET_KINDS]
        capacity = 0
        towns = {town for town, _, _ in DISTRICTS}
        # Every town gets streets, so an address can always be found away from a given town.
        while capacity < households * 1.6 or towns - {s.town for s in self._streets}:
            town, district, _ = rng.choices(DISTRICTS, weights)[0]
            street = _Street(rng.choice(names), town, district, rng.randint(1, 9), rng.randint(20, 200))
            self._streets.append(street)
            capacity += street.houses
        # Cumulative weights, computed once: choices() with plain weights re-sums them on every call.
        self._cum_weights = list(itertools.accumulate(s.houses for s in self._streets))
        self._by_town = {town: [s for s in self._streets if s.town == town] for town in towns}

    def _postcode(self, street: _Street, number: int) -> str:
        # About fifteen houses to a unit, as Royal Mail's postcodes have.
        # crc32, not hash(): str hashes change from process to process, and output must not.
        h = zlib.crc32(f"{street.name}|{street.district}|{street.sector}|{number // 15}".encode()) & 0xFFFF
        unit = UNIT_LETTERS[h % 20] + UNIT_LETTERS[(h // 20) % 20]
        return f"{street.district} {street.sector}{unit}"

    def new(self, outside: str | None = None) -> Address:
        """A household address not handed out before, in any town but `outside` when given."""
        rng = self._rng
        away = (
            [s for town, streets in self._by_town.items() if town != outside for s in streets]
            if outside
            else []
        )
        while True:
            if away:
                street = rng.choice(away)
            else:
                street = rng.choices(self._streets, cum_weights=self._cum_weights)[0]
            number = rng.randint(1, street.houses)
            flat = rng.randint(1, 12) if rng.random() < 0.1 else 0
            line = f"Flat {flat}, {number} {street.name}" if flat else f"{number} {street.name}"
            if (line, street.district) not in self._used:
                self._used.add((line, street.district))
                break
        self._next_uprn += 1
        return Address(line, street.town, self._postcode(street, number), str(self._next_uprn))
