"""ops.try_timestamptz: a provider's timestamp text, or null when PostgreSQL cannot read it.

A regex cannot rule out "2026-02-30": one such value in a signed payload would fail
every staging query that casts it, and with it the whole pipeline.

Revision ID: 0005
Revises: 0004
"""

from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute(
        """
        create or replace function ops.try_timestamptz(value text) returns timestamptz
        language plpgsql stable parallel safe as $$
        begin
            return value::timestamptz;
        exception when others then
            return null;
        end;
        $$;
        grant execute on function ops.try_timestamptz(text) to partner_signals_reader;
        """
    )


def downgrade() -> None:
    op.execute("drop function if exists ops.try_timestamptz(text)")
