"""Delivering replies to live channels (docs: README "Live channels").

A reply on a chat that came from a live channel waits in the outbox until a sender
(`chatcrm deliver --command CMD`) hands it over. A failed try is tried again after a
back-off that grows with each try; after `MAX_TRIES` failed tries the reply is given up
(shown as failed). A run holds a reply for `lease_seconds(timeout)`: a run that is killed
loses nothing, the reply is taken again once the lease has run out.

A reply's delivery state, from the least to the most settled: `waiting` (not tried yet,
or to be tried again), `sending` (a run holds it), `sent` (the channel took it; WhatsApp
then says more), `delivered`, `read`, or `failed` (given up, or the channel said so).
The channel's statuses rank so that their arrival order does not matter: the highest
one known wins.
"""

from __future__ import annotations

MAX_TRIES = 5
BACKOFF_SECONDS = (60, 300, 900, 3600)  # after the 1st, 2nd, 3rd, 4th failed try
DEFAULT_TIMEOUT_SECONDS = 30
MAX_TIMEOUT_SECONDS = 86400  # a sender that needs longer than a day for one reply has failed
LEASE_MARGIN_SECONDS = 60

# The channels that report statuses of the messages sent through them: a status belongs
# to a reply of one of these with its remote id (a Telegram message id may equal a wamid
# no more than by chance, but a forged or mistaken status must not touch it).
STATUS_CHANNELS = ("whatsapp",)
# What a channel says of a sent message (WhatsApp `statuses`), in rank order.
STATUS_RANK = {"sent": 1, "delivered": 2, "read": 3, "failed": 4}
STATES = ("waiting", "sending", "sent", "delivered", "read", "failed")

# What a successful send means on each channel: Telegram's sendMessage answers once the
# message is delivered to its servers and the chat; WhatsApp's only accepts it.
SENT_STATE = {"telegram": "delivered", "whatsapp": "sent"}


def backoff(failed_tries: int) -> int | None:
    """Seconds to wait before the next try after `failed_tries` failures; None: give up."""
    if failed_tries >= MAX_TRIES:
        return None
    return BACKOFF_SECONDS[min(failed_tries, len(BACKOFF_SECONDS)) - 1]


def lease_seconds(timeout: int) -> int:
    """How long a run holds a reply: longer than a sender may take, so that only a run
    that died loses its hold."""
    return timeout + LEASE_MARGIN_SECONDS


def state(channel: str, *, sent: bool, given_up: bool, leased: bool, status_rank: int | None) -> str:
    """A reply's delivery state now (see the module's docstring)."""
    if status_rank:
        return next(s for s, r in STATUS_RANK.items() if r == status_rank)
    if sent:
        return SENT_STATE.get(channel, "sent")
    if given_up:
        return "failed"
    if leased:
        return "sending"
    return "waiting"


def rank_sql(column: str) -> str:
    """`STATUS_RANK` as a SQL expression over a column holding a status."""
    cases = " ".join(f"WHEN '{status}' THEN {rank}" for status, rank in STATUS_RANK.items())
    return f"CASE {column} {cases} END"
