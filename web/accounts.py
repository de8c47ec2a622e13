"""Local accounts for the web page: usernames, display names, roles, and Argon2id password hashes.

Enough for a demo or a small deployment; a council would put its identity provider (OIDC) in front.
"""

from __future__ import annotations

import re
from pathlib import Path

from argon2 import PasswordHasher
from argon2.exceptions import VerificationError, VerifyMismatchError
from pydantic import Field

from lateral.config import Frozen, load_model

_hasher = PasswordHasher()
# Verifying against this when the username is unknown takes as long as a real check: no user enumeration.
_DUMMY = _hasher.hash("not a password anyone has")


class Account(Frozen):
    username: str = Field(pattern=r"^[A-Za-z0-9._@-]{1,128}$")
    name: str = Field(min_length=1)
    # The role the agreement names (e.g. mash-manager); "auditor" also opens the auditor pages.
    role: str = Field(pattern=r"^[a-z][a-z0-9-]{0,62}$")
    password_hash: str = Field(min_length=20)


class Accounts(Frozen):
    accounts: tuple[Account, ...] = Field(min_length=1)


def hash_password(password: str) -> str:
    return _hasher.hash(password)


def load_accounts(path: Path) -> dict[str, Account]:
    return {a.username: a for a in load_model(Accounts, path).accounts}


def authenticate(accounts: dict[str, Account], username: str, password: str) -> Account | None:
    """The account when the password is right; None otherwise (as slowly either way)."""
    account = accounts.get(username) if re.fullmatch(r"[A-Za-z0-9._@-]{1,128}", username) else None
    try:
        _hasher.verify(account.password_hash if account else _DUMMY, password)
    except (VerifyMismatchError, VerificationError):
        return None
    return account
