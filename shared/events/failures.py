"""How an event handler says it cannot apply an event, the same for every consumer:

- `RetryLater`: not now (the aggregate it is about has not been seen yet, its merge target is
  not known yet...): the message is nak'd with a growing delay and comes back.
- `PermanentError`: never (e.g. a merge chain that loops): the message is terminated and logged.

Any other exception is treated like RetryLater (a database that is down...) until the delivery
limit, after which the event is dead-lettered and logged loudly."""

from __future__ import annotations


class RetryLater(Exception):
    """The event cannot be applied yet; it will be delivered again."""


class PermanentError(Exception):
    """The event can never be applied: terminate it instead of retrying."""
