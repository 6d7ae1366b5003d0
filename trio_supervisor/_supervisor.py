"""The supervisor: a nursery of restart loops, the policies that steer them, and a
graceful shutdown."""

from __future__ import annotations

import dataclasses
import logging
import math
import sys
from collections import deque
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import asynccontextmanager, nullcontext
from functools import partial
from typing import TYPE_CHECKING, Any, final

import outcome
import trio

from . import _util
from ._child import (
    DO_NOT_RESTART,
    FATAL,
    STOP_SUPERVISOR,
    Child,
    ReadyStatus,
    StopBatch,
    classify,
    without_cancelled,
)
from ._config import Config, check_shared_stop, check_unique_name, settle
from ._context import enter_service_task, find_child, leave_service_task
from ._errors import RestartIntensityExceeded
from ._listeners import ListenerFeed, Removal, put_in_id_order
from ._logging import merging
from ._policy import Restart, Strategy
from ._service import Service, ServiceSpec, as_spec
from ._status import Phase, Status, StatusUpdate, make_update

if sys.version_info < (3, 11):
    from exceptiongroup import BaseExceptionGroup

if TYPE_CHECKING:
    from typing_extensions import Unpack

    from ._service import ServiceOptions

_NO_KWARGS: dict[str, Any] = {}
_NO_SCOPE = nullcontext()
"""What a restart loop enters instead of a cancel scope of its own, when the
supervisor stops its services only all together (``individual_stop=False``)."""
DEBUG, INFO, ERROR = logging.DEBUG, logging.INFO, logging.ERROR
_FAILURE_MESSAGE = "service %s (id %d) failed: %s"
_FIRST_SLOW_STOP_WARNING = 1.0
"""Seconds after the longest shutdown timeout before naming services not yet ended."""
_LAST_SLOW_STOP_WARNING = 60.0
"""The warnings' interval doubles up to this."""


@final
class Supervisor:
    """Starts services, restarts those that end, reports every change, stops them all.

    ``await supervisor.run()`` runs until the caller's cancel scope cancels
    it, `stop` is called, or a service raises `StopSupervisor`:

        supervisor = Supervisor(Config(services=[new_service("poller", poll)]))
        async with trio.open_nursery() as nursery:
            await nursery.start(supervisor.run)  # every service is RUNNING
            ...
            supervisor.stop()

    A supervisor is itself a `Service` (it has a ``name`` and ``run``),
    so supervisors can supervise supervisors.

    Raises:
        TypeError: The config, or a field of it, has the wrong type.
        ValueError: A field of the config has a bad value.
    """

    def __init__(self, config: Config) -> None:
        settings = settle(config)
        # Each Child takes what it needs of its spec: keep no spec, which at
        # 100,000 services is a fifth of the supervisor's memory.
        self._settings = dataclasses.replace(settings, specs=())
        self._logger = merging(settings.logger)
        self._children: dict[int, Child] = {}
        self._names: set[str] | None = None
        """Names taken, made at the first add(): Config's were checked already."""
        self._next_id = 0
        for spec in settings.specs:
            self._new_child(spec, spec.name)
        del settings
        self._running = False
        self._stopping = False
        self._runs = 0
        """How many times ``run()`` began: a fresh table each time."""
        self._phase = Phase.IDLE
        self._phase_changed = trio.lowlevel.ParkingLot()
        self._table: dict[int, StatusUpdate] = {}
        self._top_id = -1
        """The highest id in ``_table`` so far: a lower new one means a re-sort."""
        self._feeds: list[ListenerFeed] = []
        self._observers: list[Callable[[StatusUpdate], object]] = []
        self._nursery: trio.Nursery | None = None
        self._shutdown = trio.Event()
        self._shutdown_error: BaseException | None = None
        self._startup_scope: trio.CancelScope | None = None
        self._coordinator_scope: trio.CancelScope | None = None
        self._startup_done = trio.Event()
        self._pending_first_runs = 0
        self._loops = 0
        self._loops_ended: trio.Event | None = None
        self._restarts: deque[StatusUpdate] | None = None
        self._now: Callable[[], float] = trio.current_time
        self._group_requests: trio.MemorySendChannel[StatusUpdate] | None = None

    def __repr__(self) -> str:
        state = "running" if self._running else "idle"
        return f"<Supervisor {self.name!r} {state}, {len(self._children)} services>"

    @property
    def name(self) -> str:
        """The supervisor's name as a service: ``Config.name``."""
        return self._settings.name

    @property
    def running(self) -> bool:
        """True while ``run()`` is in progress, shutdown included."""
        return self._running

    @property
    def phase(self) -> Phase:
        """Where the supervisor is in its run."""
        return self._phase

    async def wait_phase(self, phase: Phase) -> None:
        """Wait until the supervisor has reached ``phase`` (or a later one).

        A run goes STARTING, RUNNING, STOPPING, STOPPED; one stopped during
        startup skips RUNNING, which then counts as reached:

            await supervisor.wait_phase(Phase.RUNNING)
        """
        if not isinstance(phase, Phase):
            raise TypeError(f"phase must be a Phase, got {phase!r}")
        while self._phase < phase:
            await self._phase_changed.park()
        else:
            await trio.lowlevel.checkpoint()

    def _set_phase(self, phase: Phase) -> None:
        self._phase = phase
        self._phase_changed.unpark_all()

    def unready_services(self) -> list[StatusUpdate]:
        """The latest update of every service that should be RUNNING and is not.

        A service that ended for good by its policy (``TEMPORARY``, a clean
        ``TRANSIENT`` stop, `DoNotRestart`) need not run; one waiting
        to be restarted should. Empty when the supervisor is ready:

            ready = not supervisor.unready_services()
        """
        table = self._table
        return [
            update
            for child in self._children.values()
            if (child.loop_alive or child.awaiting_group_restart)
            and (update := table.get(child.id)) is not None
            and update.status is not Status.RUNNING
        ]

    def statuses(self) -> list[StatusUpdate]:
        """The latest update of every service, in id order.

        Services that were removed are left out, so key by ``service_id``:

            failed = [u.service_name for u in supervisor.statuses() if u.err]
        """
        return list(self._table.values())

    # --- control ---------------------------------------------------------------

    def stop(self) -> None:
        """Stop every service gracefully, then let ``run()`` return normally.

        Callable from any task of the same Trio run; a no-op when the
        supervisor is not running or already stopping.
        """
        if self._running:
            self._begin_shutdown(None)

    def add(self, service: Service, **options: Unpack[ServiceOptions]) -> int:
        """Supervise ``service`` too, with the options of `ServiceSpec`.

        While the supervisor runs, the service starts at once; before, it joins
        the services of the next run. Ids are never reused:

            service_id = supervisor.add(new_service("tenant-42", serve, 42))

        Returns:
            The new service's id.

        Raises:
            TypeError: ``service`` is not a service, or an option has the wrong
                type.
            ValueError: An option has a bad value, the name is taken, or an
                option needs ``Config.individual_stop``.
            RuntimeError: The supervisor is stopping.
        """
        spec = as_spec("service", service, options)
        check_shared_stop(self._settings, spec, "service")
        if self._running and self._stopping:
            raise RuntimeError(
                f"supervisor {self.name!r} is stopping; cannot add {spec.name!r}"
            )
        names = self._names
        if names is None:
            names = self._names = {child.name for child in self._children.values()}
        child = self._new_child(spec, check_unique_name(names, spec, "service"))
        if self._nursery is not None:
            child.reported_running = True
            self._start_child(child, trio.current_time())
        return child.id

    async def remove(self, service_id: int) -> None:
        """Stop the service ``service_id`` gracefully and forget it.

        Returns once it has ended; it then leaves the snapshots (listeners get
        one without it) and is never restarted:

            await supervisor.remove(service_id)

        With ``Config.individual_stop=False`` only a service that has ended
        for good can be removed.

        Raises:
            TypeError: ``service_id`` is not an int.
            ValueError: No service has that id.
            RuntimeError: The service is running and the supervisor has
                ``individual_stop=False``.
        """
        _util.integer("service_id", service_id, minimum=0)
        child = self._children.get(service_id)
        if child is None:
            raise ValueError(f"service_id: no service has id {service_id!r}")
        if child.loop_alive and not self._settings.individual_stop:
            raise RuntimeError(
                f"service {child.name!r} (id {service_id}) is running, and "
                f"supervisor {self.name!r} has individual_stop=False: its running "
                "services stop only all together"
            )
        child.removed = True
        if child.loop_alive:
            await self._stop_children([child])
        else:
            self._forget(child)
        await trio.lowlevel.checkpoint()

    # --- running ---------------------------------------------------------------

    async def run(
        self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED
    ) -> None:
        """Supervise until cancelled, `stop` is called, or a service
        raises `StopSupervisor`.

        With ``await nursery.start(supervisor.run)``, returns once every
        service has reported RUNNING (or ended its first run). Shutting down
        stops every service gracefully and lets every listener receive the
        final snapshot, whatever ended the run.

        Raises:
            trio.Cancelled: The caller's scope was cancelled (after the
                graceful shutdown), bare.
            RestartIntensityExceeded: More restarts were needed than allowed.
            KeyboardInterrupt: A service raised it (likewise ``SystemExit``).
            RuntimeError: The supervisor is running already.
        """
        if self._running:
            raise RuntimeError(f"supervisor {self.name!r} is already running")
        await trio.lowlevel.checkpoint_if_cancelled()
        self._running = True
        try:
            self._reset()
            async with trio.open_nursery() as nursery:
                nursery.start_soon(self._stop_on_cancel)
                with trio.CancelScope(shield=True):
                    result = await outcome.acapture(self._supervise, task_status)
                nursery.cancel_scope.cancel()
        finally:
            self._running = False
            self._nursery = None
            self._set_phase(Phase.STOPPED)
        # A caller's cancellation leaves the nursery through our watcher; raise
        # it here, bare, as Trio expects of a cancelled call.
        if isinstance(result, outcome.Error):
            result.unwrap()
        await trio.lowlevel.checkpoint_if_cancelled()

    def _reset(self) -> None:
        # trio.current_time(), one call deep instead of three: every status
        # change reads it.
        self._now = trio.lowlevel.current_clock().current_time
        self._runs += 1
        self._stopping = False
        self._set_phase(Phase.STARTING)
        self._table = {}
        self._top_id = -1
        self._shutdown = trio.Event()
        self._shutdown_error = None
        self._startup_done = trio.Event()
        max_restarts = self._settings.max_restarts
        self._restarts = None if max_restarts is None else deque(maxlen=max_restarts)
        for child in self._children.values():
            child.reset()

    async def _stop_on_cancel(self) -> None:
        try:
            await trio.sleep_forever()
        except trio.Cancelled:
            self._begin_shutdown(None)

    async def _stop_with_parent(self, parent_stopping: trio.Event) -> None:
        await parent_stopping.wait()
        self._begin_shutdown(None)

    def _begin_shutdown(self, error: BaseException | None) -> None:
        if error is not None and self._shutdown_error is None:
            self._shutdown_error = error
        if self._stopping:
            return
        self._stopping = True
        self._set_phase(Phase.STOPPING)
        self._shutdown.set()
        for scope in (self._startup_scope, self._coordinator_scope):
            if scope is not None:
                scope.cancel()

    async def _supervise(self, task_status: trio.TaskStatus[None]) -> None:
        settings = self._settings
        feeds = self._feeds = [
            ListenerFeed(listener, settings.listener_buffer)
            for listener in settings.listeners
        ]
        listeners_done = trio.Event()
        async with trio.open_nursery() as listener_nursery:
            for feed in feeds:
                listener_nursery.start_soon(
                    self._feed_listener,
                    feed,
                    feeds,
                    listeners_done,
                    name=f"listener {feed.name}",
                )
            try:
                async with trio.open_nursery() as nursery:
                    self._nursery = nursery
                    await self._serve(nursery, task_status)
            finally:
                self._nursery = None
                await self._close_feeds(feeds, listener_nursery, listeners_done)
        error, self._shutdown_error = self._shutdown_error, None
        if error is not None:
            raise error

    async def _serve(
        self, nursery: trio.Nursery, task_status: trio.TaskStatus[None]
    ) -> None:
        if self._settings.strategy is not Strategy.ONE_FOR_ONE:
            send, receive = trio.open_memory_channel[StatusUpdate](math.inf)
            self._group_requests = send
            nursery.start_soon(self._coordinate, receive)
        parent = find_child()
        if parent is not None:
            nursery.start_soon(self._stop_with_parent, parent.stop_requested_event())
        started = False
        with trio.CancelScope() as self._startup_scope:
            children = list(self._children.values())
            self._pending_first_runs = len(children)
            await self._start_in_order(children)
            if self._pending_first_runs:
                await self._startup_done.wait()
            self._set_phase(Phase.RUNNING)
            task_status.started()
            started = True
        self._startup_scope = None
        self._startup_done.set()
        await self._shutdown.wait()
        await self._stop_all(nursery)
        if not started:
            task_status.started()
        nursery.cancel_scope.cancel()

    async def _feed_listener(
        self, feed: ListenerFeed, feeds: list[ListenerFeed], all_done: trio.Event
    ) -> None:
        try:
            await feed.deliver(self._table, self._logger)
        finally:
            feed.done = True
            if all(other.done for other in feeds):
                all_done.set()

    async def _close_feeds(
        self,
        feeds: list[ListenerFeed],
        listener_nursery: trio.Nursery,
        all_done: trio.Event,
    ) -> None:
        """Let every listener receive the last snapshots, within its timeout."""
        self._feeds = []
        for feed in feeds:
            feed.send.close()
        if not feeds:
            return
        timeout = self._settings.listener_shutdown_timeout
        with trio.move_on_after(timeout):
            await all_done.wait()
        late = [feed.name for feed in feeds if not feed.done]
        if late:
            self._logger.warning(
                "status update listener(s) %s still busy %gs into shutdown; "
                "cancelling them",
                ", ".join(late),
                timeout,
            )
            listener_nursery.cancel_scope.cancel()

    # --- starting -------------------------------------------------------------

    def _new_child(self, spec: ServiceSpec, name: str) -> Child:
        child = Child(self._next_id, spec, name, self._settings)
        self._next_id += 1
        self._children[child.id] = child
        return child

    def _start_child(self, child: Child, now: float) -> None:
        """Start ``child``'s restart loop; its first run begins at ``now``."""
        if self._stopping or child.loop_alive or child.removed:
            return
        assert self._nursery is not None
        child.stopping = False
        child.loop_alive = True
        self._loops += 1
        if child.ready:
            self._record(child, Status.IDLE, None, now)
            child.ready_waiter = trio.Event()
        else:
            # RUNNING as the task is handed to the scheduler, which runs a batch
            # of new tasks in no set order: so snapshots show services starting
            # in id order, at the same clock time as their first step.
            self._record_start(child, now)
            self._first_run_done(child)
        self._nursery.start_soon(self._child_loop, child, now, name=child.name)

    async def _start_in_order(self, children: Sequence[Child]) -> None:
        now = trio.current_time()
        for child in children:
            self._start_child(child, now)
            waiter = child.ready_waiter
            if waiter is not None:
                await waiter.wait()
                now = trio.current_time()

    def _first_run_done(self, child: Child) -> None:
        if not child.reported_running:
            child.reported_running = True
            self._pending_first_runs -= 1
            if self._pending_first_runs == 0:
                self._startup_done.set()

    def _ready(self, child: Child, run: int) -> None:
        if child.runs != run or not child.in_run:
            raise RuntimeError(
                f"service {child.name!r} called task_status.started() "
                "after its run ended"
            )
        now = trio.current_time()
        child.became_ready(now)
        self._record(child, Status.RUNNING, None, now)
        self._first_run_done(child)
        waiter = child.ready_waiter
        if waiter is not None:
            child.ready_waiter = None
            waiter.set()

    # --- the restart loop -----------------------------------------------------

    async def _child_loop(self, child: Child, now: float) -> None:
        """Run ``child`` until its policy or the supervisor ends it; the first
        run begins at ``now``, when the loop was scheduled."""
        task = enter_service_task(child)
        own_scope = self._settings.individual_stop
        restart_at: float | None = None
        delay = 0.0
        try:
            while not child.stopping:
                # One scope serves run after run, until a deadline cancels it.
                with trio.CancelScope() if own_scope else _NO_SCOPE as scope:
                    child.scope = scope
                    while True:
                        if restart_at is None:
                            kwargs = self._begin_run(child, scope, now, False)
                        else:
                            if delay > 0:
                                with trio.move_on_at(restart_at):
                                    await self._shutdown.wait()
                            else:
                                await trio.lowlevel.checkpoint()
                            if self._stopping or child.stopping:
                                return
                            now = self._now()
                            kwargs = self._begin_run(child, scope, now, True)
                        error: BaseException | None = None
                        try:
                            await child.fn(*child.args, **kwargs)
                        except BaseException as exc:
                            error = exc
                        update, flags = self._end_run(child, scope, error)
                        # The update holds the error; this frame, alive, must not.
                        error = None
                        if not self._restart_allowed(child, update, flags):
                            return
                        if self._group_requests is not None:
                            child.awaiting_group_restart = True
                            self._group_requests.send_nowait(update)
                            return
                        delay = child.next_delay(update.time)
                        if self._logger.isEnabledFor(INFO):
                            self._log_restart(child, delay)
                        restart_at = update.time + delay
                        if child.timed and scope is not None and scope.cancel_called:
                            break  # a deadline spent the scope: take a new one
            if self._table[child.id].status.is_alive:
                # Stopped before its task took a first step.
                self._record(child, Status.STOPPED)
        finally:
            leave_service_task(task)
            self._child_loop_ended(child)

    def _child_loop_ended(self, child: Child) -> None:
        child.loop_alive = False
        child.scope = None
        self._loops -= 1
        if self._loops == 0 and self._loops_ended is not None:
            self._loops_ended.set()
        self._first_run_done(child)
        waiter = child.ready_waiter
        if waiter is not None:
            child.ready_waiter = None
            waiter.set()
        if child.removed:
            self._forget(child)
        batches = child.stop_batches
        if batches is not None:
            child.stop_batches = None
            for batch in batches:
                batch.child_ended()

    def _begin_run(
        self, child: Child, scope: trio.CancelScope | None, now: float, restart: bool
    ) -> dict[str, Any]:
        """Open a run beginning at ``now`` in ``scope``; return the keywords the
        service gets. Records RUNNING for a ``restart``: a first start recorded
        it when it was scheduled, and a ``ready`` service reports it itself."""
        child.begin_run(now, scope)
        if child.ready:
            if restart:
                self._record(child, Status.IDLE, None, now)
            return {"task_status": ReadyStatus(partial(self._ready, child, child.runs))}
        if restart:
            self._record_start(child, now)
        return _NO_KWARGS

    def _end_run(
        self, child: Child, scope: trio.CancelScope | None, error: BaseException | None
    ) -> tuple[StatusUpdate, int]:
        """Record how the run ended, log a failure, act on what it asks for."""
        if type(error) is trio.Cancelled:
            cause = None  # how every service ends at shutdown
        elif error is None or not isinstance(error, BaseExceptionGroup):
            cause = error
        else:
            cause = without_cancelled(error)
        if cause is None and not child.stopping:
            if scope is not None and scope.cancel_called:
                # Only the supervisor's deadlines cancel a run it did not stop.
                cause = child.timeout_error()
            elif error is not None:
                # Cancelled from outside the supervisor: not the run's end.
                child.end_run()
                raise error
        child.end_run()
        waiter = child.ready_waiter
        if waiter is not None:
            child.ready_waiter = None
            waiter.set()
        status, flags = classify(cause)
        update = self._record(child, status, cause)
        if not child.reported_running:
            # A first run that ended before started() still counts for startup.
            self._first_run_done(child)
        if cause is not None:
            self._log_failure(child, update)
            if flags & FATAL:
                self._begin_shutdown(cause)
            elif flags & STOP_SUPERVISOR:
                self._begin_shutdown(None)
        return update, flags

    def _restart_allowed(self, child: Child, update: StatusUpdate, flags: int) -> bool:
        if child.stopping or child.removed or self._stopping or flags & DO_NOT_RESTART:
            return False
        policy = child.restart
        if policy is Restart.TEMPORARY:
            return False
        if policy is Restart.TRANSIENT and update.status is Status.STOPPED:
            return False
        return self._restarts is None or self._count_restart(update)

    def _count_restart(self, update: StatusUpdate) -> bool:
        """Count one more restart; refuse it and shut down past the intensity."""
        restarts = self._restarts
        settings = self._settings
        limit = settings.max_restarts
        if restarts is None or limit is None:
            return True
        while restarts and update.time - restarts[0].time > settings.max_seconds:
            restarts.popleft()
        if len(restarts) < limit:
            restarts.append(update)
            return True
        failures = [*restarts, update]
        self._begin_shutdown(
            RestartIntensityExceeded(
                f"{len(failures)} service ends needed a restart within "
                f"{settings.max_seconds:g}s; at most {settings.max_restarts} allowed",
                failures,
            )
        )
        return False

    # --- group strategies -----------------------------------------------------

    async def _coordinate(
        self, requests: trio.MemoryReceiveChannel[StatusUpdate]
    ) -> None:
        with trio.CancelScope() as self._coordinator_scope:
            await self._startup_done.wait()
            async for update in requests:
                await self._restart_group(self._children[update.service_id], update)

    async def _restart_group(self, failed: Child, update: StatusUpdate) -> None:
        if not failed.awaiting_group_restart or failed.removed:
            return  # restarted by an earlier group restart
        rest_only = self._settings.strategy is Strategy.REST_FOR_ONE
        group = [
            child
            for child in self._children.values()
            if not child.removed and (not rest_only or child.id >= failed.id)
        ]
        to_restart = [
            child
            for child in group
            if child.awaiting_group_restart
            or (child.loop_alive and child.restart is not Restart.TEMPORARY)
        ]
        for child in to_restart:
            child.awaiting_group_restart = True
        await self._stop_children([child for child in group if child.loop_alive])
        delay = failed.next_delay(update.time)
        self._log_restart(failed, delay, group=to_restart)
        await trio.sleep_until(update.time + delay)
        for child in to_restart:
            child.awaiting_group_restart = False
        await self._start_in_order(to_restart)

    # --- stopping -------------------------------------------------------------

    async def _stop_all(self, nursery: trio.Nursery) -> None:
        """Stop every service at shutdown and wait for every restart loop."""
        alive = [child for child in self._children.values() if child.loop_alive]
        if self._settings.reverse_shutdown:
            await self._stop_children(alive)
            return
        longest = max((child.shutdown_timeout for child in alive), default=0.0)
        if longest == 0 or not self._settings.individual_stop:
            # One cancellation reaches every service at once, as a nursery's
            # would: far cheaper than a cancel per service at 100,000 services.
            # Without individual stops every service has the same timeout.
            for child in alive:
                child.mark_stopping()
            if longest == 0:
                nursery.cancel_scope.cancel()
            else:
                nursery.cancel_scope.deadline = trio.current_time() + longest
        else:
            now = trio.current_time()
            for child in alive:
                child.request_stop(now)
        if self._loops:
            self._loops_ended = trio.Event()
            with trio.CancelScope(shield=True):
                await self._wait_or_warn(self._loops_ended, longest, self._live_names)

    def _live_names(self) -> list[str]:
        return [child.name for child in self._children.values() if child.loop_alive]

    async def _wait_or_warn(
        self, ended: trio.Event, longest: float, late: Callable[[], list[str]]
    ) -> None:
        """Wait for ``ended``; name the services ``late()`` returns in a WARNING
        each time a growing interval passes after the ``longest`` timeout."""
        wait = longest + _FIRST_SLOW_STOP_WARNING
        while True:
            with trio.move_on_after(wait):
                await ended.wait()
            if ended.is_set():
                return
            names = late()
            self._logger.warning(
                "still waiting for %d service(s) to stop: %s",
                len(names),
                ", ".join(names),
            )
            wait = min(wait * 2, _LAST_SLOW_STOP_WARNING)

    async def _stop_children(self, children: list[Child]) -> None:
        if self._settings.reverse_shutdown:
            for child in reversed(children):
                await self._stop_and_wait([child])
        else:
            await self._stop_and_wait(children)

    async def _stop_and_wait(self, children: list[Child]) -> None:
        batch = StopBatch()
        now = trio.current_time()
        longest = 0.0
        for child in children:
            if not child.loop_alive:
                continue
            batch.remaining += 1
            if child.stop_batches is None:
                child.stop_batches = [batch]
            else:
                child.stop_batches.append(batch)
            longest = max(longest, child.shutdown_timeout)
            child.request_stop(now)
        if batch.remaining:
            await self._wait_or_warn(
                batch.done,
                longest,
                lambda: [c.name for c in children if batch in (c.stop_batches or ())],
            )

    def _forget(self, child: Child) -> None:
        if self._children.pop(child.id, None) is None:
            return
        if self._names is not None:
            self._names.discard(child.name)
        if self._table.pop(child.id, None) is not None:
            removal = Removal(child.id)
            for feed in self._feeds:
                feed.push(removal)

    # --- reporting ------------------------------------------------------------

    def _record(
        self,
        child: Child,
        status: Status,
        err: BaseException | None = None,
        now: float | None = None,
    ) -> StatusUpdate:
        update = make_update(
            child.id,
            child.name,
            self._now() if now is None else now,
            status,
            err,
        )
        self._top_id = put_in_id_order(self._table, update, self._top_id)
        for feed in self._feeds:
            feed.push(update)
        if self._observers:
            self._notify_observers(update)
        if self._logger.isEnabledFor(DEBUG):
            self._log_status(child, status)
        return update

    def _record_start(self, child: Child, now: float) -> None:
        """Record a run that starts at once: IDLE then RUNNING at ``now``, as two
        ``_record`` calls would, in one pass (every restart makes one). IDLE,
        replaced at once, is made only for those who see every change."""
        service_id = child.id
        running = make_update(service_id, child.name, now, Status.RUNNING, None)
        self._top_id = put_in_id_order(self._table, running, self._top_id)
        feeds, observers = self._feeds, self._observers
        if feeds or observers:
            idle = make_update(service_id, child.name, now, Status.IDLE, None)
            for feed in feeds:
                feed.push(idle)
                feed.push(running)
            if observers:
                self._notify_observers(idle)
                self._notify_observers(running)
        if self._logger.isEnabledFor(DEBUG):
            self._log_status(child, Status.IDLE)
            self._log_status(child, Status.RUNNING)

    def _log_status(self, child: Child, status: Status) -> None:
        self._logger.debug(
            "service %s (id %d): %s",
            child.name,
            child.id,
            status,
            extra=child.log_extra(),
        )

    def _observe(
        self, observer: Callable[[StatusUpdate], object]
    ) -> Callable[[], None]:
        """Call ``observer`` synchronously with every update from now on, never
        coalesced (for the package's metrics); returns the function that stops it."""
        self._observers.append(observer)
        return partial(self._observers.remove, observer)

    def _notify_observers(self, update: StatusUpdate) -> None:
        for observer in self._observers:
            try:
                observer(update)
            except Exception:
                self._logger.exception("status observer %r raised", observer)

    def _log_failure(self, child: Child, update: StatusUpdate) -> None:
        logger = self._logger
        err = update.err
        if (
            err is None
            or update.status is Status.STOPPED
            or not logger.isEnabledFor(ERROR)
        ):
            return
        args = (child.name, child.id, update.status)
        extra = child.log_extra()
        if type(logger) is logging.Logger:
            # What Logger.error does, without its search of the stack for the
            # caller, on the path of every failure: the record factory's record
            # (makeRecord's, whose check that the service fields do not clash
            # with the record's attributes is moot), then its handlers
            # (handle's, whose filter() pass is moot without filters).
            record = logging.getLogRecordFactory()(
                logger.name,
                ERROR,
                __file__,
                _LOG_FAILURE_LINE,
                _FAILURE_MESSAGE,
                args,
                (type(err), err, err.__traceback__),
                "_log_failure",
                None,
            )
            record.__dict__.update(extra)
            if logger.filters:
                logger.handle(record)
            else:
                logger.callHandlers(record)
        else:
            logger.error(_FAILURE_MESSAGE, *args, exc_info=err, extra=extra)

    def _log_restart(
        self, child: Child, delay: float, group: Sequence[Child] = ()
    ) -> None:
        logger = self._logger
        if logger.isEnabledFor(INFO):
            logger.info(
                "restarting service %s (id %d) in %gs%s",
                child.name,
                child.id,
                delay,
                f" with {', '.join(c.name for c in group)}" if group else "",
                extra=child.log_extra(),
            )


@asynccontextmanager
async def open_supervisor(config: Config) -> AsyncIterator[Supervisor]:
    """Run a supervisor in the background while the block runs.

    Entering returns once every service has reported RUNNING; leaving stops
    every service gracefully and waits for them. An exception in the block
    stops them too, then propagates; an exception of the supervisor's
    (`RestartIntensityExceeded`) cancels the block and propagates:

        async with open_supervisor(Config(services=services)) as supervisor:
            await serve_requests()
    """
    supervisor = Supervisor(config)
    try:
        async with trio.open_nursery() as nursery:
            await nursery.start(supervisor.run)
            try:
                yield supervisor
            finally:
                supervisor.stop()
    except BaseExceptionGroup as group:
        if len(group.exceptions) == 1:
            raise group.exceptions[0] from None
        raise


_LOG_FAILURE_LINE = Supervisor._log_failure.__code__.co_firstlineno
