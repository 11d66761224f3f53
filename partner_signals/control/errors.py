"""What a control-plane call can refuse, with the HTTP status and stable code it maps to."""

from __future__ import annotations

from typing import Any, ClassVar


class ControlError(ValueError):
    """A refusal an operator can act on. `code` is stable; the message says what to do."""

    status: ClassVar[int] = 400
    code: ClassVar[str] = "bad_request"

    def __init__(self, message: str, **extra: Any) -> None:
        super().__init__(message)
        self.extra = extra


class NotFound(ControlError):
    status = 404
    code = "not_found"


class Forbidden(ControlError):
    status = 403
    code = "forbidden"


class Invalid(ControlError):
    """A value breaks its rule; `field` names it (422 with the field named)."""

    status = 422
    code = "validation_failed"

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}", errors=[{"field": field, "message": message}])
        self.field = field


class Conflict(ControlError):
    """The change clashes with what exists (a duplicate, a state that forbids it)."""

    status = 409
    code = "conflict"


class PlanLocked(ControlError):
    """The company's plan does not include this integration; the message names the plan
    that does."""

    status = 403
    code = "plan_locked"
