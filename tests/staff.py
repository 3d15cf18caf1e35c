"""Staff fixtures: one user and one API token per role, inside the test's transaction."""

from __future__ import annotations

from dataclasses import dataclass

from survey.accounts.models import ROLES, User
from survey.accounts.services import create_token, create_user

PASSWORD = "correct horse battery staple"


@dataclass
class Staff:
    user: User
    token: str

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}


def make_staff() -> dict[str, Staff]:
    people = {}
    for role in ROLES:
        user = create_user(f"{role}@example.org", f"The {role}", role, PASSWORD)
        _token, secret = create_token(user, "tests")
        people[role] = Staff(user, secret)
    return people
