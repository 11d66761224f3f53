"""Who is asking: an operator token's holder or the local command line, and what it may do.

Roles are ordered: a viewer reads; an operator also enables, disables, tests, rotates and
replays; an admin also manages plans, operators and keys. A token bound to a company sees
and changes only that company.
"""

from __future__ import annotations

import getpass
from dataclasses import dataclass
from typing import Literal

from partner_signals.control.errors import Forbidden, NotFound

Role = Literal["viewer", "operator", "admin"]
ROLES: tuple[Role, ...] = ("viewer", "operator", "admin")


@dataclass(frozen=True)
class Actor:
    """The one asking. `name` is what the audit trail records."""

    name: str
    role: Role
    company_id: str | None = None  # None: every company
    operator_id: int | None = None
    request_id: str | None = None

    @classmethod
    def cli(cls) -> Actor:
        """The local command line: it holds the database credentials, so it is an admin
        of everything; the audit trail names the OS user who ran it."""
        try:
            user = getpass.getuser()
        except (KeyError, OSError):
            user = "unknown"
        return cls(name=f"cli:{user}", role="admin")

    @classmethod
    def system(cls, name: str) -> Actor:
        """A process acting on its own (the push worker disabling a gone endpoint)."""
        return cls(name=f"system:{name}", role="admin")

    def may(self, role: Role) -> bool:
        return ROLES.index(self.role) >= ROLES.index(role)

    def require(self, role: Role, company_id: str | None = None) -> None:
        """Forbidden unless the actor has `role` (or above) and, when `company_id` is
        given, may act on that company. A company-bound actor asking about another
        company gets NotFound, so a token cannot probe which companies exist."""
        if not self.may(role):
            raise Forbidden(f"this needs the {role} role; {self.name} is a {self.role}")
        if company_id is not None and not self.sees(company_id):
            raise NotFound(f"no company {company_id!r}")

    def require_unbound(self, role: Role) -> None:
        """For what spans companies (plans, operators of every company)."""
        self.require(role)
        if self.company_id is not None:
            raise Forbidden(f"this needs a token not bound to one company ({self.name} is)")

    def sees(self, company_id: str) -> bool:
        return self.company_id is None or self.company_id == company_id
