"""Name pools for the population of an English town, with nicknames and transliteration variants.

Most names come from Faker's per-locale name data (read directly, not through Faker's generator, which is
far slower than sampling a list); where Faker has no romanised data (Arabic, Pakistani and Bangladeshi
names, distinctively Welsh, Scottish and Caribbean names) small curated lists stand in. Nicknames come from
the `nicknames` package (both directions).
"""

from __future__ import annotations

import importlib
import random
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cache
from typing import Any

from nicknames import NickNamer


@dataclass(frozen=True)
class Pool:
    """Names of one origin: given names by gender and family names with relative weights."""

    origin: str
    female: tuple[str, ...]
    male: tuple[str, ...]
    family: tuple[str, ...]
    family_weights: tuple[float, ...] | None = None

    def given(self, rng: random.Random, gender: str) -> str:
        names = self.female if gender == "female" else self.male
        return names[rng.randrange(len(names))]

    def surname(self, rng: random.Random) -> str:
        if self.family_weights is None:
            return self.family[rng.randrange(len(self.family))]
        return rng.choices(self.family, cum_weights=self.family_weights)[0]


def _faker(locale: str) -> Any:
    """Faker's name data for a locale (its Provider class holds plain tuples and dicts)."""
    return importlib.import_module(f"faker.providers.person.{locale}").Provider


def _latin(names: Sequence[str]) -> tuple[str, ...]:
    """Names written in the Latin alphabet (with its diacritics), as UK records hold them."""
    return tuple(n for n in names if all((c.isalpha() and ord(c) < 0x250) or c in " -'" for c in n))


def _cumulative(weights: Sequence[float]) -> tuple[float, ...]:
    total, out = 0.0, []
    for w in weights:
        total += w
        out.append(total)
    return tuple(out)


_WELSH = (
    (
        "Cerys",
        "Carys",
        "Ffion",
        "Bethan",
        "Siân",
        "Eleri",
        "Nia",
        "Megan",
        "Seren",
        "Rhiannon",
        "Catrin",
        "Gwen",
    ),
    ("Rhys", "Dylan", "Gethin", "Iwan", "Osian", "Dafydd", "Owain", "Gareth", "Huw", "Aled", "Emyr", "Ieuan"),
    (
        "Jones",
        "Williams",
        "Davies",
        "Evans",
        "Thomas",
        "Roberts",
        "Hughes",
        "Lewis",
        "Morgan",
        "Griffiths",
        "Owen",
        "Rees",
        "Price",
        "Lloyd",
        "Powell",
        "Pritchard",
        "Jenkins",
        "Parry",
        "Vaughan",
        "Bowen",
    ),
)
_SCOTTISH = (
    ("Isla", "Eilidh", "Morag", "Iona", "Kirsty", "Ailsa", "Fiona", "Catriona", "Shona", "Mhairi"),
    ("Callum", "Hamish", "Euan", "Fraser", "Angus", "Alasdair", "Ruaridh", "Finlay", "Lachlan", "Struan"),
    (
        "MacDonald",
        "McLeod",
        "MacKenzie",
        "McIntyre",
        "Campbell",
        "Stewart",
        "Robertson",
        "McGregor",
        "MacLean",
        "Fraser",
        "Murray",
        "Cameron",
        "Ross",
        "Sinclair",
        "McKay",
        "Grant",
    ),
)
_SOUTH_ASIAN = (
    (
        "Ayesha",
        "Fatima",
        "Zainab",
        "Amina",
        "Sadia",
        "Nusrat",
        "Rukhsana",
        "Shabana",
        "Priya",
        "Sunita",
        "Harpreet",
        "Simran",
        "Anjali",
        "Nasreen",
        "Farzana",
        "Shazia",
        "Parveen",
        "Tahmina",
        "Jaspreet",
        "Kiran",
    ),
    (
        "Mohammed",
        "Imran",
        "Bilal",
        "Hamza",
        "Zain",
        "Arjun",
        "Rajesh",
        "Gurpreet",
        "Harjit",
        "Sanjay",
        "Abdul",
        "Rahim",
        "Shahid",
        "Tariq",
        "Kamran",
        "Asif",
        "Faisal",
        "Jaswinder",
        "Vikram",
        "Amir",
    ),
    (
        "Khan",
        "Ahmed",
        "Hussain",
        "Begum",
        "Akhtar",
        "Rahman",
        "Islam",
        "Ali",
        "Shah",
        "Iqbal",
        "Mahmood",
        "Patel",
        "Singh",
        "Kaur",
        "Sharma",
        "Chowdhury",
        "Miah",
        "Uddin",
        "Bibi",
        "Malik",
        "Butt",
        "Choudhry",
    ),
)
_ARABIC = (
    (
        "Fatima",
        "Mariam",
        "Noor",
        "Layla",
        "Huda",
        "Amal",
        "Rania",
        "Yasmin",
        "Salma",
        "Aisha",
        "Hana",
        "Leila",
    ),
    (
        "Mohammed",
        "Ahmed",
        "Yusuf",
        "Omar",
        "Khalid",
        "Ibrahim",
        "Mustafa",
        "Hassan",
        "Ali",
        "Abdullah",
        "Karim",
        "Tariq",
        "Samir",
        "Walid",
        "Hamza",
        "Adel",
    ),
    (
        "Haddad",
        "Al-Sayed",
        "Mansour",
        "Nasser",
        "Hassan",
        "Khalil",
        "Saleh",
        "Abdullah",
        "Farah",
        "Aziz",
        "Hamdan",
        "Rashid",
        "Osman",
        "El-Amin",
        "Ibrahim",
        "Yousef",
        "Qureshi",
        "Said",
        "Darwish",
        "Awad",
    ),
)
_CARIBBEAN = (
    ("Shanice", "Tanisha", "Keisha", "Latoya", "Monique", "Simone", "Jada", "Aaliyah", "Marcia", "Sharon"),
    ("Andre", "Marlon", "Delroy", "Winston", "Tyrone", "Jermaine", "Leroy", "Devon", "Kwame", "Dwayne"),
    (
        "Campbell",
        "Brown",
        "Williams",
        "Thompson",
        "Francis",
        "Grant",
        "Reid",
        "Bailey",
        "Clarke",
        "Gordon",
        "Henry",
        "Lewis",
        "Robinson",
        "Stewart",
        "Walker",
        "Wright",
        "Johnson",
        "Edwards",
        "Morgan",
        "Mitchell",
    ),
)

# Spellings that are one name written in the Latin alphabet several ways.
TRANSLITERATIONS: tuple[tuple[str, ...], ...] = (
    ("Mohammed", "Muhammad", "Mohamed", "Mohammad", "Muhammed"),
    ("Ahmed", "Ahmad", "Ahmet"),
    ("Yusuf", "Youssef", "Yousef", "Yusef"),
    ("Hussain", "Hussein", "Husain", "Hossain"),
    ("Rahman", "Rehman", "Rahaman"),
    ("Chowdhury", "Choudhury", "Chaudhry", "Choudhry"),
    ("Fatima", "Fatimah", "Fatma"),
    ("Aisha", "Ayesha", "Aysha"),
    ("Mariam", "Maryam", "Miriam"),
    ("Omar", "Umar"),
    ("Osman", "Usman", "Othman"),
    ("Abdullah", "Abdallah"),
    ("Khalid", "Khaled"),
    ("Hassan", "Hasan"),
    ("Noor", "Nur"),
    ("Qureshi", "Kureshi", "Quraishi"),
    ("Layla", "Leila", "Laila"),
)


@cache
def transliteration_variants() -> dict[str, tuple[str, ...]]:
    """Each spelling -> the other spellings of the same name."""
    out: dict[str, tuple[str, ...]] = {}
    for group in TRANSLITERATIONS:
        for name in group:
            out[name] = tuple(n for n in group if n != name)
    return out


def _polish() -> tuple[tuple[str, ...], tuple[str, ...], tuple[str, ...]]:
    p = _faker("pl_PL")
    male = tuple(p.male_last_names) + tuple(p.unisex_last_names)
    return tuple(p.first_names_female), tuple(p.first_names_male), male


def polish_feminine(surname: str) -> str:
    """Polish family names agree with gender: Kowalski -> Kowalska."""
    for ending, feminine in (("ski", "ska"), ("cki", "cka"), ("dzki", "dzka")):
        if surname.endswith(ending):
            return surname[: -len(ending)] + feminine
    return surname


@cache
def pools() -> dict[str, Pool]:
    """Every origin's pool, by origin id."""
    gb = _faker("en_GB")
    ie = _faker("en_IE")
    india = _faker("en_IN")
    ro = _faker("ro_RO")
    yoruba = _faker("yo_NG")
    twi = _faker("tw_GH")
    pl_female, pl_male, pl_family = _polish()
    gb_family = tuple(gb.last_names)
    return {
        "english": Pool(
            "english",
            tuple(gb.first_names_female),
            tuple(gb.first_names_male),
            gb_family,
            _cumulative(list(gb.last_names.values())),
        ),
        "welsh": Pool("welsh", *_WELSH),
        "scottish": Pool("scottish", *_SCOTTISH),
        "irish": Pool(
            "irish", _latin(ie.first_names_female), _latin(ie.first_names_male), _latin(ie.last_names)
        ),
        "south_asian": Pool(
            "south_asian",
            _SOUTH_ASIAN[0] + _latin(india.first_names_female)[:80],
            _SOUTH_ASIAN[1] + _latin(india.first_names_male)[:80],
            _SOUTH_ASIAN[2] + _latin(india.last_names)[:60],
        ),
        "polish": Pool("polish", pl_female, pl_male, pl_family),
        "eastern_european": Pool(
            "eastern_european",
            _latin(ro.first_names_female),
            _latin(ro.first_names_male),
            _latin(ro.last_names),
        ),
        "caribbean": Pool("caribbean", *_CARIBBEAN),
        "west_african": Pool(
            "west_african",
            _latin(yoruba.first_names_female) + _latin(twi.first_names_female),
            _latin(yoruba.first_names_male) + _latin(twi.first_names_male),
            _latin(yoruba.last_names) + _latin(twi.last_names),
        ),
        "arabic": Pool("arabic", *_ARABIC),
    }


@cache
def _nicknamer() -> NickNamer:
    return NickNamer()


def nicknames_of(given: str) -> list[str]:
    """Short forms and nicknames of a given name, capitalised ("William" -> ["Bill", "Billy", ...])."""
    return sorted(n.capitalize() for n in _nicknamer().nicknames_of(given.casefold()))
