"""Alembic environment: runs the versioned migrations against the configured database."""

from alembic import context

from partner_signals.db import libpq_url, to_sqlalchemy

config = context.config
connection = config.attributes.get("connection")

if connection is not None:
    context.configure(connection=connection, version_table_schema="public")
    with context.begin_transaction():
        context.run_migrations()
else:
    import sqlalchemy as sa

    url = config.get_main_option("sqlalchemy.url") or to_sqlalchemy(libpq_url())
    engine = sa.create_engine(url)
    with engine.connect() as conn:
        context.configure(connection=conn, version_table_schema="public")
        with context.begin_transaction():
            context.run_migrations()
    engine.dispose()
