"""Local accounts for the web page: Argon2id hashes, owner-only file, and sign-in that says nothing more."""

from __future__ import annotations

from pathlib import Path

from click.testing import CliRunner

from lateral.cli import main
from web.accounts import authenticate, load_accounts


def test_add_user_stores_a_hash_that_signs_in(tmp_path: Path) -> None:
    path = tmp_path / "accounts.toml"
    args = ["web", "add-user", "--accounts", str(path), "--username", "ann", "--name", "Ann Lee", "--role"]
    assert CliRunner().invoke(main, [*args, "mash-manager", "--password", "correct horse"]).exit_code == 0
    assert CliRunner().invoke(main, [*args, "auditor", "--password", "battery staple"]).exit_code == 0
    assert path.stat().st_mode & 0o777 == 0o600
    assert "correct horse" not in path.read_text()
    accounts = load_accounts(path)
    assert list(accounts) == ["ann"]
    account = authenticate(accounts, "ann", "battery staple")
    assert account is not None
    assert account.role == "auditor"
    assert authenticate(accounts, "ann", "correct horse") is None
    assert authenticate(accounts, "nobody", "battery staple") is None
    assert authenticate(accounts, "'; DROP", "x") is None


def test_a_bad_role_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "accounts.toml"
    result = CliRunner().invoke(
        main,
        [
            "web",
            "add-user",
            "--accounts",
            str(path),
            "--username",
            "bo",
            "--name",
            "Bo",
            "--role",
            "Admin!",
            "--password",
            "x",
        ],
    )
    assert result.exit_code == 2
    assert not path.exists()
