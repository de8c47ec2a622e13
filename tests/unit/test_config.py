"""Configuration errors name the file, the key and the problem."""

import sqlite3
from pathlib import Path

import pytest

from adapters.core.config import load_adapter_config
from adapters.core.source import read_source
from adapters.presets import PRESETS
from broker.config import load_broker_config
from lateral.config import ConfigError


def write(tmp_path: Path, text: str, name: str = "adapter.toml") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


VALID = """
[agency]
id = "education"
name = "Northshire Schools"
[source]
url = "sqlite:///schools.db"
[policy]
agreement = "dsa.toml"
[mapping.people]
table = "pupil"
columns = { record_key = "upn", given_names = "forename", family_name = "surname" }
[mapping.events]
query = "SELECT upn AS record_key, d AS activity_date, c AS category FROM x"
[vocabulary]
EXC = "exclusion"
[contact]
name = "Designated Safeguarding Lead"
"""


def test_every_shipped_preset_config_is_valid() -> None:
    for preset in PRESETS.values():
        config = load_adapter_config(preset.config_path)
        assert config.agency.id == preset.agency_id


def test_relative_sqlite_path_is_relative_to_the_config_file(tmp_path: Path) -> None:
    config = load_adapter_config(write(tmp_path, VALID))
    assert config.source.url == f"sqlite:///{tmp_path}/schools.db"
    assert config.policy.agreement == f"{tmp_path}/dsa.toml"


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as error:
        load_adapter_config(tmp_path / "nope.toml")
    assert str(error.value) == f"{tmp_path}/nope.toml: file not found"


def test_toml_syntax_error_names_file_and_line(tmp_path: Path) -> None:
    path = write(tmp_path, "[agency]\nid = \n")
    with pytest.raises(ConfigError) as error:
        load_adapter_config(path)
    assert str(error.value).startswith(f"{path}: not valid TOML: ")
    assert "line 2" in str(error.value)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (('id = "education"', 'id = "Education Dept"'), "agency.id: String should match pattern"),
        (("[contact]\n", "[contact]\nphon = '1'\n"), "contact.phon: Extra inputs are not permitted"),
        (
            ('url = "sqlite:///schools.db"', 'url = "not a url"'),
            "source: Value error, url is not a valid SQLAlchemy database URL",
        ),
        (
            ('EXC = "exclusion"', 'EXC = "Exclusion!"'),
            "vocabulary: Value error, categories must be lower-case slugs",
        ),
        (
            ('table = "pupil"', 'table = "pupil"\nquery = "SELECT 1"'),
            "mapping.people: Value error, give either 'query' or 'table'",
        ),
        (('record_key = "upn", ', ""), "mapping.people: Value error, columns must map ['record_key']"),
        (
            ("given_names = ", 'shoe_size = "s", given_names = '),
            "mapping.people: Value error, unknown canonical column(s) ['shoe_size']",
        ),
    ],
)
def test_invalid_values_name_the_key(tmp_path: Path, change: tuple[str, str], message: str) -> None:
    assert change[0] in VALID
    path = write(tmp_path, VALID.replace(*change))
    with pytest.raises(ConfigError) as error:
        load_adapter_config(path)
    assert str(error.value).startswith(f"{path}: {message}"), str(error.value)


def test_missing_section(tmp_path: Path) -> None:
    path = write(tmp_path, VALID.replace('[contact]\nname = "Designated Safeguarding Lead"\n', ""))
    with pytest.raises(ConfigError) as error:
        load_adapter_config(path)
    assert str(error.value) == f"{path}: contact: Field required"


def test_broker_rejects_repeated_agency_ids(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        """
[policy]
agreement = "dsa.toml"
[[agencies]]
id = "police"
name = "P"
address = "127.0.0.1:1"
[[agencies]]
id = "police"
name = "P2"
address = "127.0.0.1:2"
""",
        "broker.toml",
    )
    with pytest.raises(ConfigError) as error:
        load_broker_config(path)
    assert str(error.value) == f"{path}: agencies: Value error, ids must be unique, repeated: ['police']"


def test_a_mapping_that_does_not_fit_the_database_names_the_file_and_key(tmp_path: Path) -> None:
    with sqlite3.connect(tmp_path / "schools.db") as db:
        db.execute("CREATE TABLE pupil (upn TEXT, forename TEXT)")
    path = write(tmp_path, VALID)
    with pytest.raises(ConfigError) as error:
        read_source(load_adapter_config(path))
    assert str(error.value) == (
        f"{path}: mapping.people: the source database rejected the mapping: no such column: surname"
    )


def test_an_unreachable_database_names_the_file_and_key(tmp_path: Path) -> None:
    path = write(tmp_path, VALID.replace("sqlite:///schools.db", "sqlite:///missing/dir/schools.db"))
    with pytest.raises(ConfigError) as error:
        read_source(load_adapter_config(path))
    assert str(error.value) == f"{path}: source.url: cannot read the database: unable to open database file"
