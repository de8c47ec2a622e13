"""Synthetic UK population and agency records with ground truth: the data source for the demo, the tests,
matching-quality figures and benchmarks. No real safeguarding data is ever used.

    data = generate(SynthConfig(people=20_000, seed=7))
    write_databases(data, sqlite_urls(folder))
    write_truth(data, folder)
"""

from synth.config import AGENCIES, ERROR_TYPES, ErrorRates, SynthConfig
from synth.output import (
    SyntheticData,
    generate,
    sqlite_urls,
    write_adapter_configs,
    write_databases,
    write_truth,
)
from synth.population import Person, Population
from synth.queries import Query, make_queries, write_queries

__all__ = [
    "AGENCIES",
    "ERROR_TYPES",
    "ErrorRates",
    "Person",
    "Population",
    "Query",
    "SynthConfig",
    "SyntheticData",
    "generate",
    "make_queries",
    "sqlite_urls",
    "write_adapter_configs",
    "write_databases",
    "write_queries",
    "write_truth",
]
