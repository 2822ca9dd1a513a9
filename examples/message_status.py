"""Every status of every message in a table of yours, each counted exactly once.

The listener keeps its inbox in PostgreSQL, and the callback writes through the
transaction that marks the event handled (its second argument, ``tx``): the row
and the inbox's record of the event commit together or not at all.  So Twilio's
retries and duplicates, a callback that fails half-way, and a crash (``kill -9``
of the listener, or of PostgreSQL) never count a status twice or lose one.

Run it (``pip install 'twilio-trigger[postgres]'``):

    export DATABASE_URL=postgresql://app@127.0.0.1:5432/app TWILIO_AUTH_TOKEN=...
    twilio-trigger run examples.message_status --port 8090

then point your messages' StatusCallback at it, and look:

    psql "$DATABASE_URL" -c 'SELECT * FROM message_status'
"""

from __future__ import annotations

import os

import psycopg

import twilio_trigger as twilio

DATABASE_URL = os.environ.get("DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/postgres")

# Your application's table; its migrations would make it.  Here: when this module loads.
TABLE = """
CREATE TABLE IF NOT EXISTS message_status (
    sid text PRIMARY KEY,
    status text NOT NULL,          -- the most advanced status seen
    error_code text,
    events integer NOT NULL,       -- status events recorded: each exactly once
    updated_at timestamptz NOT NULL DEFAULT now()
)
"""
RECORD = """
INSERT INTO message_status AS m (sid, status, error_code, events)
VALUES (%(sid)s, %(status)s, %(error_code)s, 1)
ON CONFLICT (sid) DO UPDATE SET
    -- a stale event (sent after delivered) is counted, but does not go back
    status = CASE WHEN %(stale)s THEN m.status ELSE EXCLUDED.status END,
    error_code = coalesce(EXCLUDED.error_code, m.error_code),
    events = m.events + 1,
    updated_at = now()
"""

listener = twilio.Listener(
    inbox=DATABASE_URL,  # events are stored, then dispatched from here
    store=DATABASE_URL,  # status order shared by every listener process
)


@listener.service
class MessageStatus(twilio.SmsStatusService):
    async def on_queued(
        self, event: twilio.SmsStatusChangeEvent, tx: psycopg.AsyncConnection
    ) -> None:
        await tx.execute(
            RECORD,
            {
                "sid": event.message_sid,
                "status": event.message_status,
                "error_code": event.error_code,
                "stale": event.stale,
            },
        )

    # Every status the same way.
    on_sent = on_delivered = on_undelivered = on_failed = on_read = on_queued


def create_table() -> None:
    with psycopg.connect(DATABASE_URL, autocommit=True) as connection:
        connection.execute(TABLE)


create_table()

if __name__ == "__main__":
    listener.run()
