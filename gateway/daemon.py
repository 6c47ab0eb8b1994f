"""The daemon: wires store, plugins, pipeline and dispatcher, and runs them until TERM.

TERM (or INT) drains: sources stop taking input, what was taken is
processed, the dispatch round in progress completes, receipts and inbound
loops stop, the store commits what is queued. A second signal, or the drain
timeout, cuts the drain short; nothing is lost either way, because every
step is committed and the next start continues from the store. A signal
during the start stops it the same way (:meth:`Gateway._start_up`).

A database deleted or replaced while running (:class:`~gateway.errors.StoreLost`)
stops the daemon the same way, after a CRITICAL log line and a ``store.lost``
event; :meth:`Gateway.run` then raises it, and ``run`` exits with its own code.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import sqlite3
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any

import pluggy
from apscheduler.schedulers.asyncio import AsyncIOScheduler

from gateway import sdnotify, worker_stages
from gateway.archives import archive_folders
from gateway.convert import Validator
from gateway.dispatcher import Dispatcher, ReceiptRecorder
from gateway.errors import ConfigError, GatewayError, StoreLost, StoreUnavailable, WorkerStartFailed
from gateway.events import Publisher
from gateway.http import HttpServer, collect_routes
from gateway.intake_pause import IntakePause
from gateway.logs import RepeatedProblem
from gateway.pipeline import Pipeline
from gateway.plugin_types import GatewayEvent, PluginContext, Source, Transport
from gateway.plugins import loaded_from_entry_points, notify, notify_stop, source_types, transport_types
from gateway.processor import Processor, normalise_context, partner_targets
from gateway.retention import SPACE_INTERVAL, Retention
from gateway.retry import RetryPolicy
from gateway.store import SQLiteStore, Store
from gateway.summary import Summary
from gateway.supervision import cancel_all, first_done, supervise
from gateway.wording import counted, noun
from gateway.workers import WorkerPool, settle_gc

log = logging.getLogger(__name__)

#: Seconds between WAL checkpoints (the writer's commits never checkpoint).
CHECKPOINT_INTERVAL = 2.0
#: Seconds between checks that the database is still there (and anchor writes).
ANCHOR_INTERVAL = 2.0
#: Seconds a maintenance job running at shutdown gets to finish.
JOB_STOP_TIMEOUT = 10.0
#: Seconds the stop waits for worker processes killed and left behind to end.
REAP_WAIT = 2.0


def retry_policy(partner: Any) -> RetryPolicy:
    """A partner's ``[partners.<name>.retry]`` as a policy."""
    r = partner.retry
    return RetryPolicy(r.max_attempts, r.max_age, r.initial, r.maximum, r.multiplier, r.jitter,
                       r.max_retry_after)


def worker_pool(settings: Any, pm: pluggy.PluginManager, workers: int | None = None) -> WorkerPool:
    """The worker processes for ``settings`` (``[gateway] workers``, unless given)."""
    if workers is None:
        workers = settings.gateway.workers
        if workers and not loaded_from_entry_points(pm):
            log.info("plugins registered by code: normalising in this process, not in workers")
            workers = 0
    return WorkerPool(workers, worker_stages.start_worker, (settings,),
                      nice=settings.gateway.worker_nice,
                      start_timeout=settings.gateway.worker_start_timeout)


def build_pipeline(settings: Any, pm: pluggy.PluginManager, store: Store,
                   validate: Validator, on_routed: Callable[[], None],
                   pool: WorkerPool) -> Pipeline:
    """The intake pipeline for ``settings``' enabled partners."""
    proc = Processor(pm, settings, normalise_context(settings), validate, partner_targets(settings))
    return Pipeline(store, pm, proc, on_routed, pause=IntakePause(pm),
                    batch_size=settings.dispatcher.batch_size, pool=pool,
                    answers_first=settings.gateway.answers_first)


class Gateway:
    """One gateway node: everything the ``run`` command starts."""

    def __init__(self, settings: Any, pm: pluggy.PluginManager, validate: Validator) -> None:
        self.settings = settings
        self.pm = pm
        g, d = settings.gateway, settings.dispatcher
        self.store = SQLiteStore(settings.store.path, group_commit_max=settings.store.group_commit_max,
                                 group_commit_delay=settings.store.group_commit_delay,
                                 busy_timeout=settings.store.busy_timeout,
                                 on_lost=self._store_lost)
        self.store.on_commit(Publisher(pm))
        context = normalise_context(settings)
        self.pool = worker_pool(settings, pm)
        partners = {n: p for n, p in settings.partners.items() if p.enabled}
        self.transports: dict[str, Transport] = {}
        routes: list[tuple[str, PluginContext]] = []
        ttypes = transport_types(pm)
        for name, p in partners.items():
            ctx = PluginContext(name, g.data_dir, context, settings, self.pool.offload)
            self.transports[name] = ttypes[p.transport].factory(p.parsed, ctx)
            routes.append((f"partners.{name}", ctx))
        self.sources: dict[str, Source] = {}
        stypes = source_types(pm)
        for name, s in settings.sources.items():
            if s.enabled:
                ctx = PluginContext(name, g.data_dir, context, settings, self.pool.offload)
                self.sources[name] = stypes[s.type].factory(s.parsed, ctx)
                routes.append((f"sources.{name}", ctx))
        served = collect_routes(settings, pm, [(who, c.routes.routes) for who, c in routes])
        #: The HTTP server (``[http] listen``), or ``None`` when it is off.
        self.http = (HttpServer(settings.http, served, shutdown_timeout=g.drain_timeout)
                     if settings.http.listen is not None else None)
        self.dispatcher = Dispatcher(
            self.store, self.transports, {n: retry_policy(p) for n, p in partners.items()},
            {n: p.receipt_timeout for n, p in partners.items()}, node=g.node_id, lease=d.lease,
            batch_size=d.batch_size, idle_poll=d.idle_poll, rounds=d.rounds)
        self.pipeline = build_pipeline(settings, pm, self.store, validate, self.dispatcher.wake,
                                       self.pool)
        self.receipts = ReceiptRecorder(self.store, self.dispatcher, self.pipeline.pause)
        self.summary = Summary(settings.store.path)
        self.retention = Retention(self.store, settings.retention, settings.store.path.parent,
                                   archive_folders(settings))
        self.ready = asyncio.Event()
        #: How often a start still under way asks systemd for more time (seconds).
        self.extend_every = sdnotify.EXTEND_EVERY
        #: Set to cut the drain short (a second TERM).
        self.abort = asyncio.Event()
        self._jobs: set[asyncio.Task[Any]] = set()  # maintenance jobs running now
        self._stop: asyncio.Event | None = None

    def _store_lost(self, exc: StoreLost) -> None:
        """The database is gone or replaced: alert once, stop taking input, stop."""
        log.critical("%s: stopping; nothing more is taken or written. Restore the database"
                     " (`ech-gateway journal verify` compares it with its anchor)", exc)
        notify(self.pm, GatewayEvent("store.lost", None, None,
                                     {"path": str(self.store.path), "error": str(exc)}))
        if self._stop is not None:
            self._stop.set()

    async def run(self, stop: asyncio.Event) -> None:
        """Run until ``stop`` is set, then drain.

        ``stop`` set during the start (:meth:`_start_up`) stops there: what was not
        processed yet waits, stored, for the next start.

        :raises StoreLost: the database does not reach its anchor (at start), or
            was deleted or replaced while running (after the drain).
        :raises ConfigError: the HTTP server cannot listen (``[http] listen``; after the drain).
        :raises WorkerStartFailed: worker processes cannot start (at start).
        :raises NodeRunning: another process runs this node on the database (before anything).
        """
        self._stop = stop
        self.store.hold_node(self.settings.gateway.node_id)
        self.store.start()
        try:
            started = await self._start_up(stop)
        except WorkerStartFailed:
            self.pipeline.close(at_once=True)  # the workers that did start
            self.store.close()
            raise
        failed, drained = None, started
        if started and not stop.is_set():
            failed, drained = await self._serve(stop)
        self.pipeline.close(at_once=not drained)
        notify_stop(self.pm)
        try:
            self.store.checkpoint()
        except (StoreUnavailable, sqlite3.Error) as exc:  # the WAL stays; the next start reads it
            log.warning("no checkpoint at the stop: %s", exc)
        self.store.close()
        if self.store.lost is not None:
            raise self.store.lost
        if failed is not None:
            raise failed
        stuck = self.pool.left_behind(wait=REAP_WAIT)
        if stuck:
            log.warning("%s (pid %s) killed and not ended (stuck in the kernel: a file system"
                        " that hangs?); the process exits without waiting for %s",
                        counted(len(stuck), "worker process", "worker processes"),
                        ", ".join(map(str, stuck)), noun(len(stuck), "it", "them"))
        log.info("stopped")

    async def _start_up(self, stop: asyncio.Event) -> bool:
        """Start the worker processes and process the inputs stored before the last stop
        but not processed; whether that was not cut short.

        ``stop`` set meanwhile begins no further batch and lets the one under way finish,
        unless it waits for a worker process to start (one that cannot, say): that is cut
        short at once, as it is by :attr:`abort` (a second TERM) or the drain timeout.
        What was cut short is processed at the next start.

        :raises WorkerStartFailed: worker processes cannot start.
        """
        doing = ["starting"]  # what systemd is told the start does (STATUS)

        async def start() -> None:
            # said as it begins: each step can take seconds on a loaded machine, and an
            # operator watching the log should not take the daemon for hung
            if stop.is_set():
                return
            if self.pool.size:
                doing[0] = "starting " + counted(self.pool.size, "worker process",
                                                 "worker processes")
                log.info(doing[0])
            await self.pipeline.start()
            waiting = await self.store.count_pending()
            if waiting and not stop.is_set():
                doing[0] = f"processing {counted(waiting, 'input')} stored before the last stop"
                log.info(doing[0])
            recovered = await self.pipeline.recover(stop)
            if recovered:
                log.info("processed %s stored before the last stop", counted(recovered, "input"))

        async def extended() -> None:
            """``start``, asking systemd for more time while it runs (TimeoutStartSec)."""
            extending = asyncio.create_task(sdnotify.extend_start(lambda: doing[0], self.extend_every))
            try:
                await start()
            finally:
                extending.cancel()

        starting = asyncio.create_task(extended(), name="start")
        await first_done(starting, stop.wait())
        if not starting.done():
            log.info("stopping while starting (a second TERM stops at once)")
            await first_done(starting, self.abort.wait(), self.pool.waiting_for_start.wait(),
                         timeout=self.settings.gateway.drain_timeout)
            if not starting.done():
                log.warning("start cut short; what is left continues at the next start")
                starting.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await starting
                return False
        starting.result()
        return True

    async def _serve(self, stop: asyncio.Event) -> tuple[ConfigError | None, bool]:
        """Run every component until ``stop`` is set, then drain; why the HTTP server did
        not start (if it did not), and whether the drain finished."""
        await self.summary.start()
        processor = supervise("pipeline", self.pipeline.run)
        dispatcher = supervise("dispatcher", self.dispatcher.run)
        links = [supervise(f"transport {n}", functools.partial(t.run, self.receipts, self.pipeline))
                 for n, t in self.transports.items()]
        sources = [supervise(f"source {n}", functools.partial(s.run, self.pipeline))
                   for n, s in self.sources.items()]
        failed = await self._serve_http(stop)
        scheduler = self._scheduler()
        scheduler.start()
        settle_gc()
        sdnotify.notify("STATUS=running")
        sdnotify.notify("READY=1")
        self.ready.set()
        log.info("gateway %s running: %s, %s", self.settings.gateway.node_id,
                 counted(len(sources), "source"), counted(len(links), "partner"))
        await stop.wait()
        sdnotify.notify("STOPPING=1")
        log.info("draining (a second TERM stops at once)")
        drain = asyncio.create_task(self._drain(sources, links, processor, dispatcher))
        await first_done(drain, self.abort.wait(), timeout=self.settings.gateway.drain_timeout)
        drained = drain.done() and not drain.cancelled() and drain.exception() is None
        if not drained:
            if drain.done():
                log.error("draining failed; what is left continues at the next start",
                          exc_info=drain.exception())
            else:
                log.warning("drain cut short; what is left continues at the next start")
            await cancel_all([drain, *sources, *links, processor, dispatcher])
        await self._stop_jobs(scheduler)
        return failed, drained

    async def _serve_http(self, stop: asyncio.Event) -> ConfigError | None:
        """Start the HTTP server, if configured; what stopped it from starting (and the daemon)."""
        if self.http is None:
            return None
        await asyncio.sleep(0)  # the sources take their intake before the first request
        try:
            await self.http.start()
        except ConfigError as exc:
            log.critical("%s; stopping", exc)
            self.http = None
            stop.set()
            return exc
        return None

    async def _drain(self, sources: list[asyncio.Task[None]], links: list[asyncio.Task[None]],
                     processor: asyncio.Task[None], dispatcher: asyncio.Task[None]) -> None:
        if self.http is not None:  # requests in progress are answered, then no more are taken
            await self.http.stop()
        await cancel_all(sources)
        await self.pipeline.stop()
        with contextlib.suppress(Exception):
            await processor
        self.dispatcher.stop()
        with contextlib.suppress(Exception):
            await dispatcher
        await cancel_all(links)

    def _scheduler(self) -> AsyncIOScheduler:
        # a busy loop runs maintenance late rather than warning about it; a job whose last
        # run still goes on (waiting for the store) skips its turn itself (_tracked): two
        # instances, so that the scheduler hands the turn over instead of warning
        scheduler = AsyncIOScheduler(job_defaults={"misfire_grace_time": None, "coalesce": True,
                                                   "max_instances": 2})
        scheduler.add_job(self._tracked(self._check_overdue), "interval",
                          seconds=self.settings.dispatcher.receipt_check_interval,
                          id="receipts-overdue")
        scheduler.add_job(self._tracked(self._checkpoint), "interval",
                          seconds=CHECKPOINT_INTERVAL, id="wal-checkpoint")
        scheduler.add_job(self._tracked(self.summary.tick), "interval",
                          seconds=self.settings.gateway.summary_interval, id="summary")
        scheduler.add_job(self._tracked(self._keep_anchor), "interval", seconds=ANCHOR_INTERVAL,
                          id="store-anchor")
        # both look at once too: a daemon started on a nearly full disk says so now
        now = datetime.now(UTC)
        scheduler.add_job(self._tracked(self._prune), "interval",
                          seconds=self.settings.retention.interval, id="retention",
                          next_run_time=now)
        scheduler.add_job(self._tracked(self._watch_space), "interval", seconds=SPACE_INTERVAL,
                          id="disk-space", next_run_time=now)
        interval = sdnotify.watchdog_interval()
        if interval:
            scheduler.add_job(lambda: sdnotify.notify("WATCHDOG=1"), "interval", seconds=interval)
        return scheduler

    def _tracked(self, job: Callable[[], Awaitable[None]]) -> Callable[[], Awaitable[None]]:
        """``job``, registered while it runs so that shutting down can let it finish.

        A turn that comes while the job's last run still goes on (its store write
        waits for another program's lock) is skipped. A store that cannot write (disk
        full, locked by another program) is reported once, then every 5 minutes,
        and when it can again, unless the intake is paused for it: its alert
        reports the incident already; so is another failure of the world (a file
        system). A lost store was reported already.
        """
        name = job.__name__.strip("_")
        problem = RepeatedProblem(log, f"maintenance job {name}")
        running: set[asyncio.Task[Any]] = set()

        async def run() -> None:
            if running:
                log.debug("maintenance job %s still runs: this turn is skipped", name)
                return
            task = asyncio.current_task()
            assert task is not None
            self._jobs.add(task)
            running.add(task)
            try:
                await job()
                problem.ok()
            except StoreUnavailable as exc:
                if self.pipeline.pause.paused:
                    log.debug("maintenance job %s waits for the store: %s", job.__name__, exc)
                else:
                    problem.failed(exc)
            except StoreLost:
                pass
            except (OSError, GatewayError, sqlite3.Error) as exc:  # the world: no traceback
                problem.failed(exc)  # every 2 s (the checkpoint), said every 5 minutes
            finally:
                self._jobs.discard(task)
                running.discard(task)
        return run

    async def _stop_jobs(self, scheduler: AsyncIOScheduler) -> None:
        """Start no more jobs and let running ones finish (shutdown would cancel them)."""
        scheduler.pause()
        if self._jobs:
            await asyncio.wait(set(self._jobs), timeout=JOB_STOP_TIMEOUT)
        scheduler.shutdown(wait=False)

    async def _keep_anchor(self) -> None:
        await self.store.keep_anchor()

    async def _checkpoint(self) -> None:
        await asyncio.to_thread(self.store.checkpoint)

    async def _check_overdue(self) -> None:
        await self.store.flag_overdue()

    async def _prune(self) -> None:
        # the files first: they need no store, which cannot write while the disk is full
        await self.retention.files.prune()
        await self.retention.prune()
        await self.retention.prune_persons()  # after the messages: theirs must be pruned first
        await self.retention.prune_receipts()

    async def _watch_space(self) -> None:
        await self.retention.watch_space()
