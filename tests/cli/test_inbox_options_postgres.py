"""--schema, like --inbox, goes before or after the `inbox` command's name, for
every command; the command's own wins, then the group's, then the variable.

Each test works in a schema of its own (``pg_schema``) of the run's database.
"""

from __future__ import annotations

import asyncio
import uuid

import pytest

from tests.postgres_support import pg_schema, postgres_database
from twilio_trigger.inbox.postgres import PostgresInbox
from twilio_trigger.testing import sms_status_params

from .conftest import invoke

__all__ = ["pg_schema", "postgres_database"]  # the fixtures, imported for pytest to find

FAILED = "SM" + "f" * 32
SCHEMA_VARIABLE = "TWILIO_TRIGGER_POSTGRES_SCHEMA"


@pytest.fixture
def filled(postgres_database: str, pg_schema: str) -> str:
    """The schema, holding one dead letter."""

    async def fill() -> None:
        inbox = PostgresInbox(postgres_database, schema=pg_schema)
        await inbox.open()
        try:
            failed = sms_status_params("failed", sid=FAILED)
            await inbox.put("k1", "sms", FAILED, "failed", list(failed.items()))
            (claimed,) = await inbox.claim(1)
            await inbox.bury(claimed.id, "ValueError: no such order")
        finally:
            await inbox.close()

    asyncio.run(fill())
    return pg_schema


def elsewhere() -> str:
    """A schema name nobody made: an inbox there has no tables."""
    return f"t_absent_{uuid.uuid4().hex[:8]}"


@pytest.mark.parametrize("before", [True, False], ids=["before", "after"])
@pytest.mark.parametrize(
    "command", [["stats"], ["list", "--dead"], ["show", "1"], ["replay", "--dead"]]
)
def test_the_schema_can_be_named_before_or_after_the_command(
    postgres_database: str, filled: str, command: list[str], before: bool
) -> None:
    where = ["--inbox", postgres_database, "--schema", filled]
    args = [*where, *command] if before else [*command, *where]
    result = invoke("inbox", *args)
    assert result.exit_code == 0, result.output
    if command[0] == "list":
        assert FAILED in result.output


def test_the_commands_own_schema_wins(postgres_database: str, filled: str) -> None:
    result = invoke(
        "inbox", "--schema", elsewhere(), "list", "--dead",
        "--inbox", postgres_database, "--schema", filled,
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert FAILED in result.output


def test_the_groups_schema_wins_over_the_variable(postgres_database: str, filled: str) -> None:
    result = invoke(
        "inbox", "--inbox", postgres_database, "--schema", filled, "list", "--dead",
        env={SCHEMA_VARIABLE: elsewhere()},
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert FAILED in result.output


def test_the_variable_still_names_the_schema(postgres_database: str, filled: str) -> None:
    result = invoke(
        "inbox", "list", "--dead", "--inbox", postgres_database, env={SCHEMA_VARIABLE: filled}
    )
    assert result.exit_code == 0, result.output
    assert FAILED in result.output
    absent = invoke("inbox", "list", "--inbox", postgres_database, "--schema", elsewhere())
    assert absent.exit_code == 1, absent.output  # another schema: another (empty) inbox
    assert "`twilio-trigger inbox migrate`" in absent.output
