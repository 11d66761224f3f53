"""Console sessions: an operator logs in to the browser console with its token once; the
browser then holds only a random session id (HttpOnly cookie), stored here as a digest
with the session's CSRF token. Revoking the operator ends its sessions at once (every
page looks the operator up); logging out deletes the row.

Revision ID: 0016
Revises: 0015
"""

from alembic import op

revision = "0016"
down_revision = "0015"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute(
        """
        create table ops.console_sessions (
            session_hash bytea primary key,
            operator_id bigint not null references ops.operators on delete cascade,
            csrf_token text not null,
            created_at timestamptz not null default now(),
            expires_at timestamptz not null
        );
        create index console_sessions_expires on ops.console_sessions (expires_at);
        """
    )


def downgrade() -> None:
    op.execute("drop table if exists ops.console_sessions")
