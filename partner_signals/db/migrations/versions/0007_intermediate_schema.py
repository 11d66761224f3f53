"""The dbt intermediates (int_*) move from schema canonical to their own, intermediate.

dbt now builds them in `intermediate`. Existing tables are moved there rather than
dropped: the mart views (fct_table_occupancy, fct_time_to_pay) read them and follow a
moved table, while a dropped one would take them along (sensor runs build no views, so
they would be missing until the next full build); the rows and the models' watermarks
stay valid, so the next run is incremental as before. Where dbt has already built a
table in `intermediate` (it ran before this migration), the old one is stale and is
dropped. Safe to run twice: a second run finds nothing left in canonical.

Revision ID: 0007
Revises: 0006
"""

from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None

READER = "partner_signals_reader"
MODELS = (
    "int_bills",
    "int_delivery_orders",
    "int_order_lines",
    "int_orders",
    "int_scope_orders",
    "int_visits",
)


def move(models: tuple[str, ...], source: str, target: str) -> str:
    """A do-block moving each model's table from `source` to `target` unless `target`
    has one (then the `source` copy is stale and dropped), and dropping the leftovers of
    a killed dbt run (`__dbt_tmp`, `__dbt_backup`) in `source`."""
    names = ", ".join(f"'{model}'" for model in models)
    return f"""
        do $$
        declare
            model text;
        begin
            foreach model in array array[{names}] loop
                execute format('drop table if exists {source}.%I', model || '__dbt_tmp');
                execute format('drop table if exists {source}.%I', model || '__dbt_backup');
                if to_regclass(format('{source}.%I', model)) is null then
                    continue;
                elsif to_regclass(format('{target}.%I', model)) is null then
                    execute format('alter table {source}.%I set schema {target}', model);
                else
                    execute format('drop table {source}.%I cascade', model);
                end if;
            end loop;
        end
        $$
        """


def upgrade() -> None:
    op.execute("create schema if not exists intermediate")
    op.execute(move(MODELS, "canonical", "intermediate"))
    # The reader reads every dbt schema, as it read the intermediates in canonical.
    op.execute(
        f"""
        grant usage on schema intermediate to {READER};
        grant select on all tables in schema intermediate to {READER};
        alter default privileges in schema intermediate grant select on tables to {READER};
        """
    )


def downgrade() -> None:
    op.execute(move(MODELS, "intermediate", "canonical"))
