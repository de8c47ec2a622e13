"""Name-frequency tables an attacker can obtain (census and registry statistics in real life): here the
synthetic generator's own name pools, weighted as it draws from them, which is the best table an
attacker of the synthetic data could hold."""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass

from adapters.core.normalise import family_key, given_tokens


@dataclass(frozen=True)
class NameTables:
    """Public frequencies of normalised names.

    Attributes:
        given: first given name -> share of people.
        female: first given name -> share of its bearers who are female.
        family: family name key -> share of people.
    """

    given: Mapping[str, float]
    female: Mapping[str, float]
    family: Mapping[str, float]


def tables_from_pools() -> NameTables:
    """The synthetic generator's pools (synth.names.pools) as frequency tables: each origin weighted by
    the default origin mix, given names uniform within a pool and sex, family names by the pool's
    weights."""
    from synth.config import OriginMix
    from synth.names import pools

    mix = OriginMix().model_dump()
    given: Counter[str] = Counter()
    female: Counter[str] = Counter()
    family: Counter[str] = Counter()
    for origin, pool in pools().items():
        weight = mix[origin]
        for sex, names in (("female", pool.female), ("male", pool.male)):
            for name in names:
                tokens = given_tokens((name,))
                if tokens:
                    given[tokens[0]] += weight * 0.5 / len(names)
                    if sex == "female":
                        female[tokens[0]] += weight * 0.5 / len(names)
        cumulative = pool.family_weights
        weights = (
            [1.0] * len(pool.family)
            if cumulative is None
            else [b - a for a, b in zip((0.0, *cumulative[:-1]), cumulative, strict=True)]
        )
        total = sum(weights)
        for name, w in zip(pool.family, weights, strict=True):
            key = family_key(name)
            if key:
                family[key] += weight * w / total
    return NameTables(given=dict(given), female={n: female[n] / given[n] for n in given}, family=dict(family))
