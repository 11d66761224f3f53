"""The admin API (`uvicorn api.admin:app`): the operator's control plane.

Bearer operator tokens (`partner-signals operators create`), roles viewer < operator <
admin, every change in the audit trail, errors as application/problem+json. The routes
are thin: each calls one service function of `partner_signals.control`, the same one the
CLI calls.
"""

from api.admin.app import create_app

app = create_app()

__all__ = ["app", "create_app"]
