"""The arithmetic of a pace: a token bucket kept as one number.

A pace is kept as the time its next token is due (the "generic cell rate
algorithm"): a start at *now* is allowed when that time, less *burst* - 1
intervals of slack, is not later than *now*, and moves it one *interval* on.
Each backend keeps that number where every process of the inbox reads it
(the Redis inbox does the same arithmetic in Lua).
"""

from __future__ import annotations

__all__ = ["pace_step"]


def pace_step(due: float | None, now: float, interval: float, burst: int) -> tuple[float, float]:
    """The wait before a start at *now* (``0.0``: start now) and the time the next
    token is due afterwards, for a bucket whose next token was due at *due*
    (``None``: never used)."""
    due = now if due is None or due < now else due
    wait = due - interval * (max(1, burst) - 1) - now
    if wait > 1e-9:
        return wait, due
    return 0.0, due + interval
