"""The PostgreSQL stores against a real PostgreSQL: claims, leases, holds, replies,
status order (against the in-memory store), expiry, the schema, outages and
inline transactions.

Each test works in a schema of its own (``pg_schema``) in the run's database; two
:class:`StoreDatabase` objects on one schema stand for two listeners.  Async store
calls run with ``asyncio.run`` inside plain tests.  What the stores say is checked,
where it matters, against the tables read on a separate connection (``scalar``).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine
from typing import Any, TypeVar

import psycopg
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.postgres_support import free_port, pg_schema, postgres_database, scalar
from twilio_trigger import SmsStatusChangeEvent, TwilioEvent
from twilio_trigger._core.order import Position, Standing, settle
from twilio_trigger._postgres_schema import SchemaError
from twilio_trigger.inbox import UnreachableError
from twilio_trigger.inbox.postgres import PostgresInbox
from twilio_trigger.stores import Claim
from twilio_trigger.stores.memory import MemoryStatusStore
from twilio_trigger.stores.postgres import (
    PostgresDeliveryStore,
    PostgresStatusStore,
    StoreDatabase,
)
from twilio_trigger.testing import sms_status_params

__all__ = ["pg_schema", "postgres_database"]  # the fixtures, imported for pytest to find

_T = TypeVar("_T")

#: Long enough that nothing expires during a test unless the test says so.
LONG = 60.0
#: A lease a test lets run out (waiting for its end as the table records it).
SHORT = 1.0
#: How long a test waits for something that should happen at once.
PATIENCE = 15.0


def run(coroutine: Coroutine[Any, Any, _T]) -> _T:
    return asyncio.run(coroutine)


def sql(schema: str, text: str) -> str:
    """*text* with ``{s}`` made the quoted *schema* (a name the fixture made)."""
    return text.replace("{s}", f'"{schema}"')


def token_key() -> str:
    """A delivery key as the listener makes it from an I-Twilio-Idempotency-Token."""
    return f"t:{uuid.uuid4()}"


def sid_key() -> str:
    """A status key as the listener makes it: the event's kind and SID."""
    return f"sms:SM{uuid.uuid4().hex}"


@contextlib.asynccontextmanager
async def stores(
    url: str,
    schema: str,
    *,
    ttl: float = LONG,
    lease: float = LONG,
    migrate: bool = True,
) -> AsyncIterator[tuple[PostgresDeliveryStore, PostgresStatusStore, StoreDatabase]]:
    """Both stores of one listener: one database object, closed after."""
    database = StoreDatabase(url, schema=schema, migrate=migrate)
    deliveries = PostgresDeliveryStore(database, ttl=ttl, lease=lease)
    statuses = PostgresStatusStore(database, ttl=ttl)
    try:
        yield deliveries, statuses, database
    finally:
        await deliveries.close()
        await statuses.close()


@contextlib.asynccontextmanager
async def deliveries(
    url: str, schema: str, *, ttl: float = LONG, lease: float = LONG
) -> AsyncIterator[PostgresDeliveryStore]:
    """A delivery store of a listener of its own (its own database object)."""
    async with stores(url, schema, ttl=ttl, lease=lease) as (store, _, _):
        yield store


async def tables(url: str, schema: str) -> None:
    """Make the tables first, for a test of what comes after."""
    async with stores(url, schema) as (_, _, database):
        await database.check()


async def wait_past(url: str, schema: str, key: str) -> None:
    """Return once the row of *key* in ``deliveries`` has expired, as it says.

    Read again after each wait: a renewal under way when the test ended the hold
    (its statement sent just before) may still move the row's expiry once."""
    deadline = time.time() + PATIENCE
    while True:
        expires = scalar(
            url, sql(schema, "SELECT expires_at FROM {s}.deliveries WHERE key = %s"), (key,)
        )
        assert isinstance(expires, float)
        assert expires < deadline
        if time.time() > expires:
            return
        # Time must pass, as the row's clock says; nothing else to wait for.
        await asyncio.sleep(max(0.0, expires - time.time()) + 0.02)


# -- claims ----------------------------------------------------------------------------------------
def test_claim_then_busy_then_done_after_complete(postgres_database: str, pg_schema: str) -> None:
    key = token_key()

    async def scenario() -> list[Claim]:
        async with (
            deliveries(postgres_database, pg_schema) as first,
            deliveries(postgres_database, pg_schema) as other,
        ):
            seen = [await first.claim(key), await first.claim(key), await other.claim(key)]
            await first.complete(key)
            seen += [await first.claim(key), await other.claim(key)]
            return seen

    assert run(scenario()) == [Claim.ACQUIRED, Claim.BUSY, Claim.BUSY, Claim.DONE, Claim.DONE]
    done = scalar(
        postgres_database, sql(pg_schema, "SELECT done FROM {s}.deliveries WHERE key = %s"), (key,)
    )
    assert done is True


def test_release_lets_the_next_claim_acquire(postgres_database: str, pg_schema: str) -> None:
    key = token_key()

    async def scenario() -> list[Claim]:
        async with (
            deliveries(postgres_database, pg_schema) as first,
            deliveries(postgres_database, pg_schema) as other,
        ):
            seen = [await first.claim(key)]
            await first.release(key)
            seen += [await other.claim(key), await first.claim(key)]
            return seen

    assert run(scenario()) == [Claim.ACQUIRED, Claim.ACQUIRED, Claim.BUSY]


def test_release_does_not_forget_a_completed_delivery(
    postgres_database: str, pg_schema: str
) -> None:
    key = token_key()

    async def scenario() -> list[Claim]:
        async with deliveries(postgres_database, pg_schema) as store:
            seen = [await store.claim(key)]
            await store.complete(key)
            await store.release(key)  # a late release of the same key, e.g. another copy's
            seen.append(await store.claim(key))
            return seen

    assert run(scenario()) == [Claim.ACQUIRED, Claim.DONE]


def test_release_of_an_unknown_key_is_harmless(postgres_database: str, pg_schema: str) -> None:
    key = token_key()

    async def scenario() -> Claim:
        async with deliveries(postgres_database, pg_schema) as store:
            await store.release(key)
            return await store.claim(key)

    assert run(scenario()) is Claim.ACQUIRED


def test_a_busy_claim_lapses_with_its_lease(postgres_database: str, pg_schema: str) -> None:
    key = token_key()

    async def scenario() -> list[Claim]:
        async with (
            deliveries(postgres_database, pg_schema, lease=SHORT) as dead,
            deliveries(postgres_database, pg_schema, lease=SHORT) as alive,
        ):
            seen = [await dead.claim(key), await alive.claim(key)]
            await wait_past(postgres_database, pg_schema, key)  # the claimer died meanwhile
            seen.append(await alive.claim(key))
            seen.append(await dead.claim(key))
            return seen

    assert run(scenario()) == [Claim.ACQUIRED, Claim.BUSY, Claim.ACQUIRED, Claim.BUSY]


def test_a_late_release_does_not_free_another_listeners_claim(
    postgres_database: str, pg_schema: str
) -> None:
    # A's lease ran out while its callback still ran; B claimed the retry.  A's callback
    # then fails and A releases: B's claim must stand, or a third copy runs beside B's.
    key = token_key()

    async def scenario() -> list[Claim]:
        async with (
            deliveries(postgres_database, pg_schema, lease=SHORT) as a,
            deliveries(postgres_database, pg_schema, lease=LONG) as b,
            deliveries(postgres_database, pg_schema) as c,
        ):
            seen = [await a.claim(key)]
            await wait_past(postgres_database, pg_schema, key)
            seen.append(await b.claim(key))
            await a.release(key)
            seen.append(await c.claim(key))
            await b.complete(key)
            seen.append(await c.claim(key))
            return seen

    assert run(scenario()) == [Claim.ACQUIRED, Claim.ACQUIRED, Claim.BUSY, Claim.DONE]


def test_a_done_delivery_is_forgotten_after_its_ttl(postgres_database: str, pg_schema: str) -> None:
    key = token_key()

    async def scenario() -> list[Claim]:
        async with deliveries(postgres_database, pg_schema, ttl=SHORT) as store:
            seen = [await store.claim(key)]
            await store.complete(key, b"<Response/>")
            seen.append(await store.claim(key))
            await wait_past(postgres_database, pg_schema, key)
            seen.append(await store.claim(key))
            return seen

    assert run(scenario()) == [Claim.ACQUIRED, Claim.DONE, Claim.ACQUIRED]


def test_hold_keeps_a_claim_past_its_lease_until_the_future_is_done(
    postgres_database: str, pg_schema: str
) -> None:
    key = token_key()

    async def scenario() -> dict[str, Any]:
        async with (
            deliveries(postgres_database, pg_schema, lease=SHORT) as holder,
            deliveries(postgres_database, pg_schema, lease=SHORT) as other,
        ):
            seen: dict[str, Any] = {"first": await holder.claim(key)}
            until: asyncio.Future[None] = asyncio.get_running_loop().create_future()
            holder.hold(key, until)
            # Several leases long: the other listener never gets it.
            claims: list[Claim] = []
            end = time.monotonic() + 3 * SHORT
            while time.monotonic() < end:
                claims.append(await other.claim(key))
                await asyncio.sleep(0.05)
            seen["held"] = claims
            until.set_result(None)  # the late callback is over; nobody renews now
            await wait_past(postgres_database, pg_schema, key)
            seen["lapsed"] = await other.claim(key)
            return seen

    seen = run(scenario())
    assert seen["first"] is Claim.ACQUIRED
    assert len(seen["held"]) > 10
    assert set(seen["held"]) == {Claim.BUSY}
    assert seen["lapsed"] is Claim.ACQUIRED


def test_fifty_concurrent_claims_acquire_exactly_once(
    postgres_database: str, pg_schema: str
) -> None:
    key = token_key()

    async def scenario() -> tuple[list[Claim], list[Claim]]:
        await tables(postgres_database, pg_schema)
        async with contextlib.AsyncExitStack() as stack:
            many = [
                await stack.enter_async_context(deliveries(postgres_database, pg_schema))
                for _ in range(5)
            ]
            claims = await asyncio.gather(*(many[i % 5].claim(key) for i in range(50)))
            winner = claims.index(Claim.ACQUIRED)
            await many[winner % 5].complete(key)
            after = await asyncio.gather(*(many[i % 5].claim(key) for i in range(50)))
            return list(claims), list(after)

    claims, after = run(scenario())
    assert claims.count(Claim.ACQUIRED) == 1, claims
    assert claims.count(Claim.BUSY) == 49, claims
    assert after == [Claim.DONE] * 50


def test_a_completed_delivery_keeps_its_reply_for_another_listener(
    postgres_database: str, pg_schema: str
) -> None:
    replied, plain = token_key(), token_key()
    twiml = b'<?xml version="1.0" encoding="UTF-8"?><Response><Say>Caf\xc3\xa9</Say></Response>'

    async def scenario() -> tuple[
        Claim, bytes | None, Claim, bytes | None, bytes | None, bytes | None
    ]:
        async with (
            deliveries(postgres_database, pg_schema) as first,
            deliveries(postgres_database, pg_schema) as other,
        ):
            await first.claim(replied)
            busy = await other.reply_of(replied)  # claimed, not yet answered
            await first.complete(replied, twiml)
            await first.claim(plain)
            await first.complete(plain)
            return (
                await other.claim(replied),
                await other.reply_of(replied),
                await other.claim(plain),
                await other.reply_of(plain),
                await other.reply_of(token_key()),  # never seen
                busy,
            )

    assert run(scenario()) == (Claim.DONE, twiml, Claim.DONE, None, None, None)


def test_two_listeners_see_each_others_claims_and_completions(
    postgres_database: str, pg_schema: str
) -> None:
    keys = [token_key() for _ in range(3)]

    async def scenario() -> dict[str, list[Claim]]:
        async with (
            stores(postgres_database, pg_schema) as (one, _, _),
            stores(postgres_database, pg_schema) as (two, _, _),
        ):
            mine = [await one.claim(k) for k in keys]
            theirs = [await two.claim(k) for k in keys]
            await one.complete(keys[0])
            await one.release(keys[1])
            after = [await two.claim(k) for k in keys]
            return {"mine": mine, "theirs": theirs, "after": after}

    seen = run(scenario())
    assert seen["mine"] == [Claim.ACQUIRED] * 3
    assert seen["theirs"] == [Claim.BUSY] * 3
    assert seen["after"] == [Claim.DONE, Claim.ACQUIRED, Claim.BUSY]


def test_a_delivery_completed_after_its_claim_row_was_expired_is_still_remembered(
    postgres_database: str, pg_schema: str
) -> None:
    # As the in-memory and Redis stores do: complete() records the delivery done
    # whatever became of its claim (a stalled listener whose claim lapsed and was
    # deleted by the expiry meanwhile).
    key = token_key()

    async def scenario() -> Claim:
        async with (
            stores(postgres_database, pg_schema) as (store, _, database),
            deliveries(postgres_database, pg_schema) as other,
        ):
            assert await store.claim(key) is Claim.ACQUIRED
            await database.expire(now=time.time() + 2 * LONG)  # the claim lapsed: deleted
            await store.complete(key)
            return await other.claim(key)

    assert run(scenario()) is Claim.DONE


# -- status order ----------------------------------------------------------------------------------
#: Sequences of (status, rank) and what each step stands as, per settle().
SEQUENCES: dict[str, list[tuple[str, int]]] = {
    "in order": [("queued", 1), ("sending", 2), ("sent", 3), ("delivered", 4), ("read", 5)],
    "stale after delivered": [("sent", 3), ("delivered", 4), ("sent", 3), ("queued", 1)],
    "repeat of the current status": [("sent", 3), ("delivered", 4), ("delivered", 4)],
    "repeat of the first status": [("sent", 3), ("sent", 3), ("sent", 3)],
    "equal rank becomes current": [
        ("sent", 3),
        ("undelivered", 5),
        ("delivered", 5),
        ("failed", 5),
    ],
    "same status at another rank": [
        ("participant-join", 1),
        ("participant-join", 2),
        ("participant-join", 1),
    ],
    "large sequence numbers": [
        ("ringing", 999_999_998),
        ("completed", 999_999_999),
        ("in-progress", 99_999_999),
    ],
    "non-ascii and empty statuses": [("réçu", 2), ("", 2), ("", 2), ("réçu", 1)],
    "stale first then advance": [("delivered", 4), ("sent", 3), ("read", 5), ("delivered", 4)],
    "repeat after a stale one": [("sent", 3), ("delivered", 4), ("queued", 1), ("delivered", 4)],
}


@pytest.mark.parametrize("name", sorted(SEQUENCES))
def test_observe_gives_what_the_in_memory_store_gives(
    postgres_database: str, pg_schema: str, name: str
) -> None:
    steps = SEQUENCES[name]
    key = sid_key()

    async def scenario() -> tuple[list[Standing], list[Standing]]:
        memory = MemoryStatusStore(ttl=LONG, limit=100)
        async with stores(postgres_database, pg_schema) as (_, order, _):
            in_postgres = [await order.observe(key, status, rank) for status, rank in steps]
        in_memory = [await memory.observe(key, status, rank) for status, rank in steps]
        return in_postgres, in_memory

    in_postgres, in_memory = run(scenario())
    assert in_postgres == in_memory
    known: Position | None = None
    for step, standing in zip(steps, in_postgres, strict=True):
        expected, position = settle(known, *step)
        known = position or known
        assert standing == expected, (step, steps)


def test_observe_of_a_stale_and_a_repeat_event(postgres_database: str, pg_schema: str) -> None:
    key = sid_key()

    async def scenario() -> list[Standing]:
        async with stores(postgres_database, pg_schema) as (_, order, _):
            return [
                await order.observe(key, "sent", 3),
                await order.observe(key, "delivered", 4),
                await order.observe(key, "sent", 3),  # stale
                await order.observe(key, "delivered", 4),  # a repeat: what came before it
            ]

    assert run(scenario()) == [
        Standing(None, False),
        Standing("sent", False),
        Standing("delivered", True),
        Standing("sent", False),
    ]


_STATUSES = st.sampled_from(
    ["queued", "sent", "delivered", "undelivered", "failed", "read", "ringing", "réçu", ""]
)
_RANKS = st.integers(0, 5) | st.sampled_from([99_999_999, 999_999_999])
_STEPS = st.lists(st.tuples(_STATUSES, _RANKS), min_size=1, max_size=8)


@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(steps=_STEPS)
def test_observe_follows_the_in_memory_store_for_any_sequence(
    postgres_database: str, pg_schema: str, steps: list[tuple[str, int]]
) -> None:
    key = sid_key()  # a fresh SID for every example

    async def scenario() -> tuple[list[Standing], list[Standing]]:
        memory = MemoryStatusStore(ttl=LONG, limit=100)
        async with stores(postgres_database, pg_schema) as (_, order, _):
            in_postgres = [await order.observe(key, status, rank) for status, rank in steps]
        in_memory = [await memory.observe(key, status, rank) for status, rank in steps]
        return in_postgres, in_memory

    in_postgres, in_memory = run(scenario())
    assert in_postgres == in_memory, steps


def test_an_expired_status_counts_as_unknown(postgres_database: str, pg_schema: str) -> None:
    key = sid_key()

    async def scenario() -> list[Standing]:
        async with stores(postgres_database, pg_schema) as (_, order, database):
            seen = [await order.observe(key, "delivered", 4)]
            async with database.connection() as connection:
                await connection.execute(
                    sql(pg_schema, "UPDATE {s}.statuses SET expires_at = %s WHERE key = %s"),
                    (time.time() - 1, key),
                )
            seen.append(await order.observe(key, "sent", 3))  # no longer known as stale
            seen.append(await order.observe(key, "delivered", 4))  # and sent is current now
            return seen

    assert run(scenario()) == [
        Standing(None, False),
        Standing(None, False),
        Standing("sent", False),
    ]
    expires = scalar(
        postgres_database,
        sql(pg_schema, "SELECT expires_at FROM {s}.statuses WHERE key = %s"),
        (key,),
    )
    assert isinstance(expires, float)
    assert expires > time.time() + LONG / 2  # the row was renewed


def test_statuses_are_shared_between_listeners(postgres_database: str, pg_schema: str) -> None:
    key = sid_key()

    async def scenario() -> list[Standing]:
        async with (
            stores(postgres_database, pg_schema) as (_, one, _),
            stores(postgres_database, pg_schema) as (_, two, _),
        ):
            return [
                await one.observe(key, "sent", 3),
                await two.observe(key, "delivered", 4),
                await one.observe(key, "sent", 3),
            ]

    assert run(scenario()) == [
        Standing(None, False),
        Standing("sent", False),
        Standing("delivered", True),
    ]


def test_concurrent_observes_keep_the_most_advanced_status(
    postgres_database: str, pg_schema: str
) -> None:
    sid = sid_key()
    lifecycle = [("queued", 1), ("sending", 2), ("sent", 3), ("delivered", 4), ("read", 5)]

    async def scenario() -> tuple[list[Standing], Standing]:
        await tables(postgres_database, pg_schema)
        async with contextlib.AsyncExitStack() as stack:
            orders = [
                (await stack.enter_async_context(stores(postgres_database, pg_schema)))[1]
                for _ in range(5)
            ]
            standings = await asyncio.gather(
                *(orders[i % 5].observe(sid, *lifecycle[i % 5]) for i in range(25))
            )
            return list(standings), await orders[0].observe(sid, "accepted", 0)

    standings, last = run(scenario())
    assert last == Standing("read", True)
    assert 1 <= sum(standing.previous_status is None for standing in standings) <= 5, standings


# -- expiry ----------------------------------------------------------------------------------------
def test_expire_deletes_every_expired_row_in_batches_and_keeps_the_rest(
    postgres_database: str, pg_schema: str
) -> None:
    expired_deliveries, expired_statuses = 2_345, 1_234  # more than one batch of 1,000 each

    async def scenario() -> tuple[int, int, int]:
        async with stores(postgres_database, pg_schema) as (store, order, database):
            fresh = token_key()
            await store.claim(fresh)
            await store.complete(fresh)
            await store.claim(token_key())  # a claim under way
            await order.observe(sid_key(), "sent", 3)
            past = time.time() - 10
            async with database.connection() as connection:
                await connection.execute(
                    sql(
                        pg_schema,
                        "INSERT INTO {s}.deliveries (key, done, owner, reply, expires_at) "
                        "SELECT 'old-' || g, mod(g, 2) = 0, NULL, NULL, %s "
                        "FROM generate_series(1, %s) g",
                    ),
                    (past, expired_deliveries),
                )
                await connection.execute(
                    sql(
                        pg_schema,
                        "INSERT INTO {s}.statuses (key, status, rank, previous, expires_at) "
                        "SELECT 'old-' || g, 'sent', 3, NULL, %s FROM generate_series(1, %s) g",
                    ),
                    (past, expired_statuses),
                )
            deleted = await database.expire()
            again = await database.expire()
            everything = await database.expire(now=time.time() + 2 * LONG)
            return deleted, again, everything

    deleted, again, everything = run(scenario())
    assert deleted == expired_deliveries + expired_statuses
    assert again == 0
    assert everything == 3  # the fresh rows, once their time is past too
    for table in ("deliveries", "statuses"):
        assert scalar(postgres_database, sql(pg_schema, "SELECT count(*) FROM {s}.") + table) == 0


def test_expire_keeps_fresh_rows(postgres_database: str, pg_schema: str) -> None:
    async def scenario() -> tuple[int, list[Claim]]:
        async with stores(postgres_database, pg_schema) as (store, order, database):
            keys = [token_key() for _ in range(3)]
            for key in keys:
                await store.claim(key)
                await store.complete(key)
            await order.observe(sid_key(), "sent", 3)
            deleted = await database.expire()
            return deleted, [await store.claim(key) for key in keys]

    deleted, claims = run(scenario())
    assert deleted == 0
    assert claims == [Claim.DONE] * 3
    assert scalar(postgres_database, sql(pg_schema, "SELECT count(*) FROM {s}.deliveries")) == 3
    assert scalar(postgres_database, sql(pg_schema, "SELECT count(*) FROM {s}.statuses")) == 1


# -- the schema ------------------------------------------------------------------------------------
def test_the_stores_create_their_tables_or_use_an_inboxs(
    postgres_database: str, pg_schema: str
) -> None:
    async def scenario() -> tuple[Claim, Claim]:
        inbox = PostgresInbox(postgres_database, schema=pg_schema)
        await inbox.open()  # the same tables, made by the inbox
        await inbox.close()
        key = token_key()
        async with deliveries(postgres_database, pg_schema) as store:
            first = await store.claim(key)
            await store.complete(key)
        async with deliveries(postgres_database, pg_schema) as store:
            return first, await store.claim(key)

    assert run(scenario()) == (Claim.ACQUIRED, Claim.DONE)
    versions = scalar(
        postgres_database, sql(pg_schema, "SELECT array_agg(version) FROM {s}.schema_version")
    )
    assert versions == [1, 2, 3]


def test_a_store_makes_a_fresh_schema(postgres_database: str, pg_schema: str) -> None:
    async def scenario() -> Standing:
        async with stores(postgres_database, pg_schema) as (_, order, database):
            await database.check()
            return await order.observe(sid_key(), "sent", 3)

    assert run(scenario()) == Standing(None, False)
    versions = scalar(
        postgres_database, sql(pg_schema, "SELECT array_agg(version) FROM {s}.schema_version")
    )
    assert versions == [1, 2, 3]


def test_the_first_concurrent_operations_on_a_fresh_schema_all_succeed(
    postgres_database: str, pg_schema: str
) -> None:
    # A listener's first requests arrive together, each preparing the tables; or
    # two listeners start together on a schema nobody made yet.
    async def scenario() -> list[object]:
        async with (
            stores(postgres_database, pg_schema) as (one, order, _),
            stores(postgres_database, pg_schema) as (two, _, _),
        ):
            calls = [
                *(one.claim(token_key()) for _ in range(4)),
                *(two.claim(token_key()) for _ in range(4)),
                order.observe(sid_key(), "sent", 3),
            ]
            return list(await asyncio.gather(*calls, return_exceptions=True))

    got = run(scenario())
    assert got[:8] == [Claim.ACQUIRED] * 8, got
    assert got[8] == Standing(None, False), got


def test_without_migrate_a_store_on_an_empty_schema_says_what_to_run(
    postgres_database: str, pg_schema: str
) -> None:
    async def scenario() -> None:
        async with stores(postgres_database, pg_schema, migrate=False) as (store, _, _):
            await store.claim(token_key())

    with pytest.raises(SchemaError) as caught:
        run(scenario())
    assert "`twilio-trigger inbox migrate" in str(caught.value)
    assert pg_schema in str(caught.value)
    made = scalar(
        postgres_database, "SELECT count(*) FROM pg_namespace WHERE nspname = %s", (pg_schema,)
    )
    assert made == 0


# -- outages ---------------------------------------------------------------------------------------
def test_an_unreachable_store_is_an_error_told_once(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG, logger="psycopg.pool")
    caplog.set_level(logging.INFO, logger="twilio_trigger")
    url = f"postgresql://postgres:hunter2@127.0.0.1:{free_port()}/nowhere"

    async def scenario() -> list[BaseException]:
        failures: list[BaseException] = []
        async with stores(url, "twilio_trigger") as (store, order, database):
            calls: list[Callable[[], Awaitable[object]]] = [
                lambda: store.claim(token_key()),
                lambda: order.observe(sid_key(), "sent", 3),
                database.check,
                lambda: store.reply_of(token_key()),
            ]
            for call in calls:
                try:
                    await call()
                except Exception as error:
                    failures.append(error)
        return failures

    failures = run(scenario())
    assert len(failures) == 4
    assert all(isinstance(f, UnreachableError) for f in failures), failures
    assert all("the PostgreSQL store cannot be reached" in str(f) for f in failures)
    errors = [
        r.getMessage()
        for r in caplog.records
        if r.name == "twilio_trigger" and r.levelno == logging.ERROR
    ]
    (error,) = errors
    assert "cannot be reached" in error
    assert "hunter2" not in error
    pool = [
        r.getMessage()
        for r in caplog.records
        if r.name.startswith("psycopg.pool") and r.levelno >= logging.WARNING
    ]
    assert pool == []


# -- inline transactions ---------------------------------------------------------------------------
def test_the_stores_transactions_commit_or_roll_back(
    postgres_database: str, pg_schema: str
) -> None:
    def not_an_exception(result: object) -> bool:
        return not isinstance(result, Exception)

    event: TwilioEvent = SmsStatusChangeEvent(sms_status_params("delivered"))

    async def scenario() -> tuple[object, object]:
        async with stores(postgres_database, pg_schema) as (store, _, database):
            async with database.connection() as connection:
                await connection.execute(
                    sql(pg_schema, "CREATE TABLE {s}.effects (note text NOT NULL)")
                )
            source = store.transaction_source()

            async def write(
                the_event: TwilioEvent, connection: psycopg.AsyncConnection[Any]
            ) -> str:
                await connection.execute(sql(pg_schema, "INSERT INTO {s}.effects VALUES ('kept')"))
                return "ok"

            async def fail(
                the_event: TwilioEvent, connection: psycopg.AsyncConnection[Any]
            ) -> None:
                await connection.execute(
                    sql(pg_schema, "INSERT INTO {s}.effects VALUES ('raised')")
                )
                raise RuntimeError("no")

            async def decline(
                the_event: TwilioEvent, connection: psycopg.AsyncConnection[Any]
            ) -> object:
                await connection.execute(
                    sql(pg_schema, "INSERT INTO {s}.effects VALUES ('declined')")
                )
                return ValueError("declined")

            kept = await source.run(write, event, not_an_exception)
            with pytest.raises(RuntimeError, match="no"):
                await source.run(fail, event, not_an_exception)
            declined = await source.run(decline, event, not_an_exception)
            return kept, declined

    kept, declined = run(scenario())
    assert kept == "ok"
    assert isinstance(declined, ValueError)
    notes = scalar(postgres_database, sql(pg_schema, "SELECT array_agg(note) FROM {s}.effects"))
    assert notes == ["kept"]
