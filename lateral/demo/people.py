"""The demo's people: a handful of fictional residents of a fictional Northshire, some known to several
agencies. Activity dates are relative to today so that "recent" stays recent. NHS numbers are in the
999 range, which the NHS reserves for testing."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field

from adapters.core.records import SeedEvent, SeedPerson

TOWN = "Northtown"


def _nhs(stem: str) -> str:
    """Completes a 9-digit stem with its modulus-11 check digit (stems are chosen so one exists)."""
    total = sum(int(d) * w for d, w in zip(stem, range(10, 1, -1), strict=True))
    check = (11 - total % 11) % 11
    if check == 10:
        raise ValueError("stem has no valid check digit")
    return stem + str(check)


@dataclass(frozen=True)
class DemoPerson:
    key: str
    given_names: tuple[str, ...]
    family_name: str
    date_of_birth: dt.date
    gender: str
    address_line: str
    postcode: str
    uprn: str
    nhs_stem: str
    # agency id -> (category, days ago, restricted)
    activity: dict[str, tuple[tuple[str, int, bool], ...]]
    other_names: tuple[tuple[str, str], ...] = ()
    # Agencies that hold no date of birth for this person (fire crews often do not ask).
    no_dob_at: frozenset[str] = field(default_factory=frozenset)

    def seed(self, agency: str, today: dt.date) -> SeedPerson:
        events = tuple(
            SeedEvent(today - dt.timedelta(days=ago), category, restricted)
            for category, ago, restricted in self.activity[agency]
        )
        return SeedPerson(
            key=self.key,
            given_names=self.given_names,
            family_name=self.family_name,
            date_of_birth=None if agency in self.no_dob_at else self.date_of_birth,
            gender=self.gender,
            address_line=self.address_line,
            town=TOWN,
            postcode=self.postcode,
            uprn=self.uprn,
            nhs_number=_nhs(self.nhs_stem) if agency in ("nhs", "socialcare") else "",
            other_names=self.other_names,
            events=events,
        )


PEOPLE: tuple[DemoPerson, ...] = (
    DemoPerson(
        "jayden",
        ("Jayden",),
        "Clarke",
        dt.date(2012, 3, 14),
        "male",
        "14 Brook Street",
        "NT1 4QT",
        "100071234501",
        "999000001",
        {
            "police": (("missing-person", 20, False), ("child-exploitation", 45, False)),
            "nhs": (("emergency-department-attendance", 21, False),),
            "socialcare": (
                ("referral", 60, False),
                ("assessment", 50, False),
                ("child-in-need-plan", 30, False),
            ),
        },
    ),
    DemoPerson(
        "shannon",
        ("Shannon", "Louise"),
        "Clarke",
        dt.date(1990, 7, 2),
        "female",
        "14 Brook Street",
        "NT1 4QT",
        "100071234501",
        "999000002",
        {
            "police": (("domestic-abuse", 90, False), ("domestic-abuse", 200, False)),
            "nhs": (("emergency-department-attendance", 89, False),),
            "fire": (("home-fire-safety-visit", 120, False),),
        },
    ),
    DemoPerson(
        "darren",
        ("Darren",),
        "Pike",
        dt.date(1985, 11, 30),
        "male",
        "14 Brook Street",
        "NT1 4QT",
        "100071234501",
        "999000003",
        {"police": (("domestic-abuse", 10, True),), "fire": (("home-fire-safety-visit", 120, False),)},
        no_dob_at=frozenset({"fire"}),
    ),
    DemoPerson(
        "amira",
        ("Amira",),
        "Haddad",
        dt.date(1978, 5, 21),
        "female",
        "3 Mill Lane",
        "NT2 7HB",
        "100071239902",
        "999000004",
        {
            "fire": (("hoarding", 15, False), ("accidental-dwelling-fire", 300, False)),
            "socialcare": (("s42-enquiry", 100, False),),
        },
    ),
    DemoPerson(
        "kacper",
        ("Kacper",),
        "Nowak",
        dt.date(2008, 9, 9),
        "male",
        "27 Station Road",
        "NT3 2PL",
        "100071240017",
        "999000006",
        {"police": (("anti-social-behaviour", 400, False),)},
    ),
    DemoPerson(
        "aoife",
        ("Aoife",),
        "O'Brien",
        dt.date(2015, 1, 20),
        "female",
        "8 Cedar Close",
        "NT2 9DS",
        "100071241150",
        "999000007",
        {
            "nhs": (("emergency-department-attendance", 5, False),),
            "socialcare": (("referral", 3, False),),
        },
    ),
    DemoPerson(
        "mohammed",
        ("Mohammed",),
        "Rahman",
        dt.date(1950, 2, 11),
        "male",
        "Flat 6, Albion Court",
        "NT1 5RW",
        "100071243318",
        "999000008",
        {
            "fire": (("home-fire-safety-visit", 30, False),),
            "nhs": (("mental-health-crisis", 12, False),),
            "socialcare": (("s42-enquiry", 25, False),),
        },
    ),
    DemoPerson(
        "olivia",
        ("Olivia",),
        "Jones",
        dt.date(1999, 12, 12),
        "female",
        "52 Victoria Road",
        "NT4 1AZ",
        "100071245560",
        "999000009",
        {"nhs": (("maternity", 50, False),), "socialcare": (("looked-after-child", 3000, False),)},
        other_names=(("Olivia", "Smith"),),
    ),
    DemoPerson(
        "tyler",
        ("Tyler",),
        "Evans",
        dt.date(2011, 4, 4),
        "male",
        "9 Heath Rise",
        "NT3 8LU",
        "100071246683",
        "999000010",
        {
            "police": (("missing-person", 7, False),),
            "socialcare": (("child-protection-plan", 100, False),),
        },
    ),
    DemoPerson(
        "grace",
        ("Grace",),
        "Adeyemi",
        dt.date(2010, 6, 6),
        "female",
        "31 Orchard Way",
        "NT2 3EE",
        "100071247791",
        "999000011",
        {},
    ),
)


def seed_people(agency: str, today: dt.date | None = None) -> list[SeedPerson]:
    """The demo people an agency holds, as that agency records them."""
    today = today or dt.date.today()
    return [p.seed(agency, today) for p in PEOPLE if agency in p.activity]


def nhs_number(key: str) -> str:
    """The demo NHS number of a person (for examples)."""
    return next(_nhs(p.nhs_stem) for p in PEOPLE if p.key == key)
