"""`lateral dsa` as a data protection officer and the parties use it, in process."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

from click.testing import CliRunner

from lateral.cli import main
from lateral.demo.agreement import EXAMPLE_AGREEMENT

PARTIES = ["northshire-council", "northshire-police", "northshire-fire", "northshire-nhs"]


def run(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(main, ["dsa", *args])
    return result.exit_code, result.output


def test_keygen_sign_and_verify(tmp_path: Path) -> None:
    dsa = tmp_path / "dsa.toml"
    # The example's own dates, moved around today so that the test does not expire with them.
    today = dt.date.today()
    dsa.write_text(
        EXAMPLE_AGREEMENT.read_text()
        .replace("valid_from = 2026-04-01", f"valid_from = {today - dt.timedelta(days=1)}")
        .replace("review_by = 2027-09-30", f"review_by = {today + dt.timedelta(days=100)}")
        .replace("valid_until = 2029-03-31", f"valid_until = {today + dt.timedelta(days=200)}")
    )
    for party in PARTIES:
        assert run("keygen", str(dsa), "--party", party, "--key", str(tmp_path / f"{party}.key"))[0] == 0
    assert dsa.read_text().count("# ---") == EXAMPLE_AGREEMENT.read_text().count("# ---")  # comments kept
    for party in PARTIES[:3]:
        code, _ = run("sign", str(dsa), "--party", party, "--key", str(tmp_path / f"{party}.key"))
        assert code == 0
    code, out = run("verify", str(dsa))
    assert code == 1
    assert "northshire-nhs: missing" in out.splitlines()
    assert out.splitlines()[-1] == "NOT VERIFIED: services will refuse this agreement"
    code, out = run(
        "sign", str(dsa), "--party", "northshire-nhs", "--key", str(tmp_path / "northshire-fire.key")
    )
    assert code == 2
    assert "this private key does not match the key the agreement names for the party" in out
    run("sign", str(dsa), "--party", "northshire-nhs", "--key", str(tmp_path / "northshire-nhs.key"))
    code, out = run("verify", str(dsa))
    assert (code, out.splitlines()[-1]) == (0, "verified")
    assert [line for line in out.splitlines() if line.startswith("northshire-")] == [
        f"{party}: valid" for party in PARTIES
    ]
    code, out = run(
        "keygen", str(dsa), "--party", "northshire-nhs", "--key", str(tmp_path / "northshire-nhs.key")
    )
    assert (code, out.strip()) == (
        2,
        f"error: {tmp_path}/northshire-nhs.key: already exists; refusing to overwrite a key",
    )


def test_check_summarises_in_plain_english() -> None:
    code, out = run("check", str(EXAMPLE_AGREEMENT))
    assert code == 0
    assert "Who may ask whom, for what (nothing else is allowed):" in out
    assert "  R1: nhs never disclose sexual-health, termination-of-pregnancy: " in out
    assert (
        "    may ask socialcare, police for child-safeguarding (children only), "
        "Mon, Tue, Wed, Thu, Fri 08:00-18:00."
    ) in out.splitlines()


def test_check_names_the_clause_of_an_invalid_agreement(tmp_path: Path) -> None:
    bad = tmp_path / "dsa.toml"
    bad.write_text(
        EXAMPLE_AGREEMENT.read_text().replace('roles = ["mash-police-officer"]', 'roles = ["MASH Officer"]')
    )
    code, out = run("check", str(bad))
    assert code == 2
    assert out.strip() == (
        f"error: {bad}: permissions[2] (P3): roles: role 'MASH Officer' must be lower-case letters, "
        "digits and hyphens"
    )


def test_explain_gives_the_decision_and_its_clauses() -> None:
    code, out = run(
        "explain",
        str(EXAMPLE_AGREEMENT),
        "--requester",
        "northshire-nhs",
        "--role",
        "safeguarding-nurse",
        "--purpose",
        "child-safeguarding",
        "--subject",
        "child",
        "--agency",
        "police",
        "--at",
        "2026-11-22 10:00",
    )
    assert code == 0
    assert out.splitlines()[1:] == [
        "",
        "  police: DENY (OUTSIDE_HOURS)",
        "    outside the agreed hours (P4 only Mon-Fri 08:00-18:00, Europe/London)",
        "    P4: Safeguarding nurses may ask social care and police whether a child is known, "
        "in office hours",
    ]


def test_diff_shows_what_each_version_allows_that_the_other_does_not(tmp_path: Path) -> None:
    new = tmp_path / "new.toml"
    new.write_text(
        EXAMPLE_AGREEMENT.read_text()
        .replace('release = ["outcome", "contact"]', 'release = ["outcome", "latest_date", "contact"]')
        .replace('agencies = ["socialcare", "nhs", "fire"]', 'agencies = ["socialcare", "nhs"]')
    )
    code, out = run("diff", str(EXAMPLE_AGREEMENT), str(new))
    assert code == 1
    assert (
        "  + northshire-nhs as safeguarding-nurse asking police for child-safeguarding about a child: also "
        "releasing latest activity date"
    ) in out.splitlines()
    assert (
        "  - northshire-police as mash-police-officer asking fire for child-safeguarding about a child "
        "(at any time): releasing whether known, latest activity date, safeguarding contact"
    ) in out.splitlines()
    assert run("diff", str(EXAMPLE_AGREEMENT), str(EXAMPLE_AGREEMENT)) == (
        0,
        f"{EXAMPLE_AGREEMENT} allows what {EXAMPLE_AGREEMENT} did not:\n  nothing\n\n"
        f"{EXAMPLE_AGREEMENT} allowed what {EXAMPLE_AGREEMENT} does not:\n  nothing\n",
    )


def test_ropa_has_a_section_per_controller() -> None:
    code, out = run("ropa", str(EXAMPLE_AGREEMENT))
    assert code == 0
    assert [line for line in out.splitlines() if line.startswith("## ")] == [
        "## Northshire County Council (children's and adult social care) (controller)",
        "## Northshire Police (controller)",
        "## Northshire Fire and Rescue Service (controller)",
        "## Northshire NHS Foundation Trust (controller)",
    ]
    assert "- **Transfers outside the UK**: none" in out
