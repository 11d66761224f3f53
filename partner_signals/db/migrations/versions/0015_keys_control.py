"""Keys under operator control, and the health summary's read of POS events.

- A key's `last_used_at` is written in batches by every worker
  (partner_signals.key_usage). Such an update changes nothing a cache holds, so the
  cache NOTIFY trigger of migration 0011 no longer fires for it on ops.partner_keys and
  ops.ingest_keys: workers keep their cached keys. Any other change still notifies.
- raw.order_events gets (company_id, source, received_at), so the health summary's
  "last POS event received" per company is one index probe instead of a scan
  (docs/admin.md `## Health` has its measured insert cost).

Revision ID: 0015
Revises: 0014
"""

from alembic import op

revision = "0015"
down_revision = "0014"
branch_labels = None
depends_on = None

KEY_TABLES = ("partner_keys", "ingest_keys")


def upgrade() -> None:
    for table in KEY_TABLES:
        op.execute(
            f"""
            drop trigger notify_cache_change on ops.{table};
            create trigger notify_cache_change after insert or delete on ops.{table}
                for each row execute function ops.notify_cache_change('key_hash');
            create trigger notify_cache_change_update after update on ops.{table}
                for each row
                when ((to_jsonb(old) - 'last_used_at') is distinct from
                      (to_jsonb(new) - 'last_used_at'))
                execute function ops.notify_cache_change('key_hash');
            """
        )
    op.execute(
        """
        create index if not exists order_events_company_source_received
            on raw.order_events (company_id, source, received_at);
        """
    )


def downgrade() -> None:
    op.execute("drop index if exists raw.order_events_company_source_received")
    for table in KEY_TABLES:
        op.execute(
            f"""
            drop trigger notify_cache_change_update on ops.{table};
            drop trigger notify_cache_change on ops.{table};
            create trigger notify_cache_change after insert or update or delete
                on ops.{table} for each row execute function ops.notify_cache_change('key_hash');
            """
        )
