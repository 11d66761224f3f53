"""One name per signal: pushes of `prep_time` become `item_prep_times`, the catalogue's name.

The signal catalogue (each mart's yml) names every signal once; the prep-time signal was
`item_prep_times` in files and `prep_time` in pushes. Stored subscriptions and the
per-partner sync state follow the rename, so an existing partner keeps receiving it and
its next value continues the same version sequence. Messages already in the outbox keep
the type they were planned with.

Revision ID: 0008
Revises: 0007
"""

from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def _rename(old: str, new: str) -> None:
    op.execute(
        f"""
        update ops.adapter_sync_state set signal = '{new}' where signal = '{old}';
        update ops.integrations
        set config = jsonb_set(
                config,
                '{{signals}}',
                (select jsonb_agg(case when name = '{old}' then '{new}' else name end)
                 from jsonb_array_elements_text(config -> 'signals') as name)
            ),
            updated_at = now()
        where jsonb_typeof(config -> 'signals') = 'array' and config -> 'signals' ? '{old}';
        """
    )


def upgrade() -> None:
    _rename("prep_time", "item_prep_times")


def downgrade() -> None:
    _rename("item_prep_times", "prep_time")
