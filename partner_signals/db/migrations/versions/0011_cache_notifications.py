"""Tell every worker at once when a key, an integration or a restaurant changes.

Ingest and the partner API cache who may send and read what; these triggers send one
NOTIFY per changed row (delivered when its transaction commits), naming the columns the
caches are keyed by, so a revoked key is refused within milliseconds on every worker
(partner_signals.invalidation). Only keys and ids travel: never a secret or a config.

Revision ID: 0011
Revises: 0010
"""

from alembic import op

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None

# table -> the columns its caches are keyed by
WATCHED = {
    "ingest_keys": ("key_hash",),
    "partner_keys": ("key_hash",),
    "integrations": ("company_id", "provider"),
    "restaurants": ("company_id", "restaurant_id"),
}


def upgrade() -> None:
    op.execute(
        """
        create function ops.notify_cache_change() returns trigger
        language plpgsql as $$
        declare
            name text;
            old_row jsonb := '{}';
            new_row jsonb := '{}';
        begin
            -- TG_ARGV names the key columns: only they are sent, never secrets.
            foreach name in array TG_ARGV loop
                if TG_OP <> 'INSERT' then
                    old_row := old_row || jsonb_build_object(name, to_jsonb(OLD) -> name);
                end if;
                if TG_OP <> 'DELETE' then
                    new_row := new_row || jsonb_build_object(name, to_jsonb(NEW) -> name);
                end if;
            end loop;
            if TG_OP <> 'INSERT' then
                perform pg_notify('partner_signals_cache',
                    jsonb_build_object('table', TG_TABLE_NAME, 'row', old_row)::text);
            end if;
            -- An update that moves a row (a restaurant to another company) changes
            -- what both its old and its new keys answer.
            if TG_OP = 'INSERT' or (TG_OP = 'UPDATE' and new_row <> old_row) then
                perform pg_notify('partner_signals_cache',
                    jsonb_build_object('table', TG_TABLE_NAME, 'row', new_row)::text);
            end if;
            return null;
        end;
        $$;
        """
    )
    for table, columns in WATCHED.items():
        args = ", ".join(f"'{c}'" for c in columns)
        op.execute(
            f"create trigger notify_cache_change after insert or update or delete "
            f"on ops.{table} for each row execute function ops.notify_cache_change({args})"
        )


def downgrade() -> None:
    for table in WATCHED:
        op.execute(f"drop trigger notify_cache_change on ops.{table}")
    op.execute("drop function ops.notify_cache_change()")
