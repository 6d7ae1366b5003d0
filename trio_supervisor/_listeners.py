"""Fan-out of status changes to listeners: one memory channel and one task each.

Each change travels as the one frozen `StatusUpdate` it made (or a
removal mark), shared by every listener, in batches: the changes made while a
listener's task is busy gather in one list, sent through the channel once. The
supervisor's cost per change is an append per listener, whatever the number of
services. Each listener's task keeps its own view of the table, applies the
changes in order and hands the listener a fresh list after each one. When more
than the buffer's worth of changes wait for one listener, it stops being fed
them; its task drops what waits and reads the supervisor's table once, which
coalesces the backlog into the newest snapshot and keeps memory bounded.
"""

from __future__ import annotations

import inspect
import logging
from collections.abc import Mapping
from typing import final

import trio

from ._child import FATAL_EXCEPTIONS, contains
from ._config import StatusUpdateListener
from ._logging import AnyLogger
from ._status import StatusUpdate


@final
class Removal:
    """The change that takes a service out of the snapshots."""

    __slots__ = ("service_id",)

    def __init__(self, service_id: int) -> None:
        self.service_id = service_id


Change = StatusUpdate | Removal


def put_in_id_order(
    table: dict[int, StatusUpdate], update: StatusUpdate, top_id: int
) -> int:
    """Store ``update`` in ``table``, keeping its keys in id order; return the new
    highest id. A service first recorded after one with a higher id (added while
    an earlier ``ready`` service was still waiting to start) re-sorts the table
    in place, since listeners hold it."""
    service_id = update.service_id
    if service_id >= top_id or service_id in table:
        table[service_id] = update
        return max(service_id, top_id)
    table[service_id] = update
    ordered = sorted(table.items())
    table.clear()
    table.update(ordered)
    return top_id


def listener_name(listener: object) -> str:
    name = getattr(listener, "__qualname__", None)
    return name if isinstance(name, str) else repr(listener)


@final
class ListenerFeed:
    """One listener: its channel, the batch of changes it has not taken yet, and
    whether it has fallen behind."""

    __slots__ = (
        "batch",
        "done",
        "lagging",
        "limit",
        "listener",
        "name",
        "receive",
        "send",
        "waiting",
    )

    def __init__(self, listener: StatusUpdateListener, buffer: int) -> None:
        self.listener = listener
        self.name = listener_name(listener)
        # One batch at a time waits in the channel: the changes made since the
        # listener's task last took one.
        self.send, self.receive = trio.open_memory_channel[list[Change]](1)
        self.batch: list[Change] | None = None
        self.limit = buffer
        self.waiting = 0
        """Changes pushed and not yet applied, in the batch or the one in hand."""
        self.lagging = False
        self.done = False

    def push(self, change: Change) -> None:
        """Queue ``change``, or mark the listener behind when its buffer is full."""
        if self.waiting >= self.limit:
            self.lagging = True
            return
        self.waiting += 1
        batch = self.batch
        if batch is None:
            batch = self.batch = [change]
            self.send.send_nowait(batch)
        else:
            batch.append(change)

    async def deliver(
        self, table: Mapping[int, StatusUpdate], logger: AnyLogger
    ) -> None:
        """Feed the listener until the channel closes and everything is delivered."""
        view: dict[int, StatusUpdate] = {}
        updates = view.values()  # a live view: list(updates) is each snapshot
        top_id = -1
        receive = self.receive
        listener = self.listener
        while True:
            try:
                batch = await receive.receive()
            except trio.EndOfChannel:
                return
            if self.batch is batch:
                self.batch = None  # changes from now on start a new batch
            for change in batch:
                if self.lagging:
                    break
                self.waiting -= 1
                if type(change) is StatusUpdate:
                    service_id = change.service_id
                    if service_id >= top_id:
                        view[service_id] = change
                        top_id = service_id
                    else:
                        top_id = put_in_id_order(view, change, top_id)
                else:
                    view.pop(change.service_id, None)
                # What _call does, inline: this runs once per change.
                try:
                    result = listener(list(updates))
                    if result is not None and inspect.isawaitable(result):
                        await result
                except BaseException as exc:
                    self._raised(exc, logger)
            if self.lagging:
                # What waits is older than the table: drop it, hand over the table.
                self.lagging = False
                self.batch = None
                self.waiting = 0
                closed = False
                try:
                    receive.receive_nowait()
                except trio.WouldBlock:
                    pass
                except trio.EndOfChannel:
                    closed = True
                view = dict(table)
                updates = view.values()
                top_id = max(view, default=-1)
                await self._call(list(view.values()), logger)
                if closed:
                    return

    async def _call(self, snapshot: list[StatusUpdate], logger: AnyLogger) -> None:
        try:
            result = self.listener(snapshot)
            if result is not None and inspect.isawaitable(result):
                await result
        except BaseException as exc:
            self._raised(exc, logger)

    def _raised(self, exc: BaseException, logger: AnyLogger) -> None:
        """Log what the listener raised, or raise it again when it is a
        cancellation or a fatal error (KeyboardInterrupt, SystemExit)."""
        if contains(exc, (trio.Cancelled, *FATAL_EXCEPTIONS)):
            raise exc
        if logger.isEnabledFor(logging.ERROR):
            logger.error("status update listener %s raised", self.name, exc_info=exc)
