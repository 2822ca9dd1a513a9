"""The tables of the PostgreSQL inbox and stores: their schema, its versions, and
creating or upgrading them.

Every table lives in one schema (``twilio_trigger`` unless ``postgres_schema``
says otherwise), with its version in ``schema_version``.  :func:`prepare`
creates or upgrades the tables when the listener starts (unless
``postgres_migrate`` is off, for teams that forbid DDL at run time: then it
only checks the version, and ``twilio-trigger inbox migrate`` applies the
upgrades).  Migrations run under an advisory lock, so that listeners starting
together apply each once.  The connections are :mod:`._postgres`'s.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

from ._option_parsers import valid_schema

if TYPE_CHECKING:
    from psycopg import AsyncConnection

__all__ = [
    "SCHEMA_VERSION",
    "SchemaError",
    "migrate",
    "prepare",
    "quoted",
    "schema_version",
]

logger = logging.getLogger("twilio_trigger")

# Each migration takes the tables from the version before it to its own
# (its index + 1); "{s}" is the quoted schema.  Never edit one that shipped:
# add the next.
_MIGRATIONS: tuple[str, ...] = (
    """
CREATE TABLE {s}.events (
    id bigserial PRIMARY KEY,
    key text NOT NULL UNIQUE,
    kind text NOT NULL,
    sid text,
    status text,
    params text NOT NULL,
    received_at double precision NOT NULL,
    state text NOT NULL,
    attempts integer NOT NULL DEFAULT 0,
    next_attempt_at double precision NOT NULL,
    last_error text,
    finished_at double precision,
    headers text,
    worker text,
    lease_until double precision
);
CREATE INDEX events_due ON {s}.events (next_attempt_at, id) WHERE state = 'pending';
CREATE INDEX events_leases ON {s}.events (lease_until) WHERE state = 'running';
CREATE INDEX events_finished ON {s}.events (state, finished_at)
    WHERE state IN ('done', 'dead');
CREATE TABLE {s}.deliveries (
    key text PRIMARY KEY,
    done boolean NOT NULL,
    owner text,
    reply bytea,
    expires_at double precision NOT NULL
);
CREATE INDEX deliveries_expiry ON {s}.deliveries (expires_at);
CREATE TABLE {s}.statuses (
    key text PRIMARY KEY,
    status text NOT NULL,
    rank integer NOT NULL,
    previous text,
    expires_at double precision NOT NULL
);
CREATE INDEX statuses_expiry ON {s}.statuses (expires_at);
-- The rules of twilio_trigger._core.order.settle, in one round trip.
CREATE FUNCTION {s}.observe(
    the_key text, the_status text, the_rank integer, expires double precision,
    now double precision, OUT previous text, OUT stale boolean
) LANGUAGE plpgsql AS $$
DECLARE
    known {s}.statuses;
BEGIN
    previous := NULL;
    stale := false;
    INSERT INTO {s}.statuses (key, status, rank, previous, expires_at)
        VALUES (the_key, the_status, the_rank, NULL, expires)
        ON CONFLICT (key) DO NOTHING;
    IF FOUND THEN
        RETURN;
    END IF;
    SELECT * INTO known FROM {s}.statuses WHERE key = the_key FOR UPDATE;
    IF known.expires_at <= now THEN
        UPDATE {s}.statuses SET status = the_status, rank = the_rank, previous = NULL,
            expires_at = expires WHERE key = the_key;
        RETURN;
    END IF;
    IF known.status = the_status AND known.rank = the_rank THEN
        previous := known.previous;
        RETURN;
    END IF;
    previous := known.status;
    IF the_rank < known.rank THEN
        stale := true;
        RETURN;
    END IF;
    UPDATE {s}.statuses SET status = the_status, rank = the_rank, previous = known.status,
        expires_at = expires WHERE key = the_key;
END
$$;
""",
    # 2: the settings every process of the inbox shares (dispatch paused...).
    """
CREATE TABLE {s}.settings (
    name text PRIMARY KEY,
    value text NOT NULL,
    updated_at double precision NOT NULL
);
""",
    # 3: what the inbox counted (events received, handled, failed attempts...).
    # Each count is spread over rows (shards: the writer's backend pid modulo 64),
    # so that inserts committing at once do not queue on one row; a count is the
    # sum of its rows.  since_ms: when counting began, in ms since the epoch.
    """
CREATE TABLE {s}.counters (
    name text NOT NULL,
    shard integer NOT NULL,
    value bigint NOT NULL,
    PRIMARY KEY (name, shard)
);
INSERT INTO {s}.counters (name, shard, value)
    VALUES ('since_ms', 0, (extract(epoch FROM clock_timestamp()) * 1000)::bigint);
""",
)

#: The version of the tables this release uses.
SCHEMA_VERSION = len(_MIGRATIONS)


class SchemaError(Exception):
    """The tables are not at the version this release uses, and may not be changed."""


def quoted(schema: str) -> str:
    """*schema* as SQL writes it (checked by :func:`valid_schema` first)."""
    if not valid_schema(schema):
        raise ValueError(f"not a schema name: {schema!r}")
    return f'"{schema}"'


async def schema_version(connection: AsyncConnection[Any], schema: str) -> int:
    """The version of the tables in *schema* (0: none yet)."""
    # From the catalog's table rather than to_regclass(), whose cache a
    # transaction that waited for another's migration may not have refreshed.
    cursor = await connection.execute(
        "SELECT EXISTS (SELECT 1 FROM pg_catalog.pg_tables WHERE schemaname = %s "
        "AND tablename = 'schema_version')",
        (schema,),
    )
    row = await cursor.fetchone()
    if row is None or not row[0]:
        return 0
    cursor = await connection.execute(f"SELECT max(version) FROM {quoted(schema)}.schema_version")
    row = await cursor.fetchone()
    return 0 if row is None or row[0] is None else int(row[0])


async def migrate(connection: AsyncConnection[Any], schema: str) -> tuple[int, int]:
    """Create or upgrade the tables in *schema*; return the versions before and after."""
    s = quoted(schema)
    # Listeners that start together: one migrates, the others wait, then see it
    # done.  The lock is taken before the transaction, so that the transaction of
    # one that waited starts after the other's commit and sees its tables.
    lock = ("SELECT pg_advisory_lock(hashtext(%s))", (f"twilio-trigger:{schema}",))
    await connection.execute(*lock)
    try:
        async with connection.transaction():
            before = await schema_version(connection, schema)
            if before > SCHEMA_VERSION:
                raise SchemaError(_newer(schema, before))
            if before < SCHEMA_VERSION:
                await connection.execute(f"CREATE SCHEMA IF NOT EXISTS {s}")
                await connection.execute(
                    f"CREATE TABLE IF NOT EXISTS {s}.schema_version (version integer "
                    f"PRIMARY KEY, applied_at timestamptz NOT NULL DEFAULT now())"
                )
                for number in range(before, SCHEMA_VERSION):
                    await connection.execute(_MIGRATIONS[number].replace("{s}", s))
                    await connection.execute(
                        f"INSERT INTO {s}.schema_version (version) VALUES (%s)", (number + 1,)
                    )
    finally:
        if not connection.closed:
            await connection.execute(
                "SELECT pg_advisory_unlock(hashtext(%s))", (f"twilio-trigger:{schema}",)
            )
    return before, SCHEMA_VERSION


def _newer(schema: str, version: int) -> str:
    return (
        f"the tables in schema {schema} are at version {version}, made by a newer "
        f"twilio-trigger than this one (which knows up to {SCHEMA_VERSION}): upgrade it"
    )


async def prepare(
    connection: AsyncConnection[Any], schema: str, *, allowed: bool, location: str
) -> None:
    """Make sure the tables in *schema* are at :data:`SCHEMA_VERSION`: created or
    upgraded when *allowed*, else :class:`SchemaError` saying what to run."""
    version = await schema_version(connection, schema)
    if version == SCHEMA_VERSION:
        return
    if version > SCHEMA_VERSION:
        raise SchemaError(_newer(schema, version))
    if not allowed:
        found = "no tables" if version == 0 else f"tables at version {version}"
        raise SchemaError(
            f"schema {schema} of {location} has {found}; this release needs version "
            f"{SCHEMA_VERSION}, and postgres_migrate is off: run `twilio-trigger inbox "
            f"migrate --inbox URL` (with TWILIO_TRIGGER_POSTGRES_SCHEMA={schema})"
        )
    before, after = await migrate(connection, schema)
    if before != after:
        logger.info(
            "made the tables of schema %s of %s version %d (were %s)",
            schema,
            location,
            after,
            before or "none",
        )
