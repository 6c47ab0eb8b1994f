"""The gateway's worker processes: CPU-bound work beside the event loop.

The pipeline normalises in them, and plugins offload to them through
:attr:`~gateway.plugin_types.PluginContext.offload` (parsing receipts, say):
the event-loop process is the one every message passes through, and on a
small machine it is the first to run out of CPU. With no workers (``[gateway]
workers = 0``, or plugins registered by code, which a spawned worker would
not have) offloaded work runs in a thread of this process instead, as it does
while worker processes cannot start.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import gc
import logging
import multiprocessing
import os
import signal
import sys
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from pathlib import Path
from typing import Any, TypeVar, cast

from gateway.errors import WorkerLost, WorkerStartFailed
from gateway.logs import RepeatedProblem
from gateway.plugin_types import in_thread

log = logging.getLogger(__name__)

T = TypeVar("T")

#: Seconds before a worker process is started again after one could not start, doubling up to
#: the maximum.
START_RETRY_FIRST, START_RETRY_MAX = 2.0, 60.0
#: Seconds a worker process may take to start (its initializer) before it counts as one that
#: cannot start (``[gateway] worker_start_timeout``).
START_TIMEOUT = 60.0


class _Job:
    """A piece of work waiting for a worker: the worker it prefers (and whether it waits
    for that one), and its turn (a future)."""

    __slots__ = ("insist", "prefer", "turn")

    def __init__(self, prefer: int | None, insist: bool = False) -> None:
        self.prefer = prefer
        self.insist = insist and prefer is not None
        self.turn: asyncio.Future[int] = asyncio.get_running_loop().create_future()


class WorkerPool:
    """Spawned processes, each started on first use and restarted after it dies.

    Each worker runs one piece of work at a time; what waits for a worker
    waits here, in order, and goes to the first worker that is free, as in
    one shared pool. A piece of work may name the worker it prefers, which
    takes it if free, or waits for it (``insist``): the pipeline finishes a
    batch in the worker that normalised it, which still holds the batch's parsed
    drafts (another would read them again, which costs more CPU than the wait for
    the worker's current piece of work).

    A worker process that cannot start (its initializer raises, hangs, or it dies
    first) is no fault of the work given it: the work waits (:meth:`run`).
    """

    def __init__(self, size: int, initializer: Callable[..., None] | None = None,
                 initargs: tuple[Any, ...] = (), *, nice: int = 0,
                 start_timeout: float = START_TIMEOUT) -> None:
        """:param nice: added to the workers' nice value (a lower CPU priority than this
            process's), so that the event loop wins when the cores are busy.
        :param start_timeout: seconds a new worker process's initializer may take; then
            the process is killed and left behind, as one that cannot start."""
        self.size = size
        self.nice = nice
        self.start_timeout = start_timeout
        #: set while work waits for a worker process to start (one starting, or none able to)
        self.waiting_for_start = asyncio.Event()
        self._starts_awaited = 0
        #: the processes killed and left behind (:meth:`_abandon`), until they ended
        self._left: list[int] = []
        self._initializer = initializer
        self._initargs = initargs
        self._pools: list[ProcessPoolExecutor | None] = [None] * size
        self._busy = [False] * size
        self._waiting: list[_Job] = []
        #: why the last worker process could not start (``None``: it started)
        self._cannot_start: str | None = None
        self._next_start = 0.0  # (monotonic) after such a failure, none is started before
        self._start_delay = START_RETRY_FIRST
        # its cause comes from the initializer, which sees no input: nothing to redact
        self._start_problem = RepeatedProblem(log, "starting a worker process", redacted=False)

    @property
    def pids(self) -> list[int]:
        """The worker processes running now."""
        return [pid for pool in self._pools if pool is not None for pid in pool._processes]

    async def start(self) -> None:
        """Start the processes now rather than with the first piece of work.

        :raises WorkerStartFailed: one cannot start (its initializer fails, or takes longer
            than ``start_timeout``).
        """
        for worker in range(self.size):
            await self._execute(_Job(worker), _nothing, ())

    def pick(self, avoid: int | None = None) -> int:
        """A worker for new work: a free one other than ``avoid`` if there is one.

        :raises ValueError: there are no workers.
        """
        if not self.size:
            raise ValueError("a pool without workers has none to pick")
        return min(range(self.size), key=lambda w: (self._busy[w], w == avoid))

    def is_free(self, worker: int) -> bool:
        """Whether ``worker`` would take work given it now."""
        return not self._busy[worker]

    async def run(self, fn: Callable[..., T], *args: Any, worker: int | None = None,
                  insist: bool = False) -> T:
        """``fn(*args)`` in a worker process (in a thread when there are none).

        ``fn`` must be a module-level function and its arguments and result
        picklable.

        :param worker: the worker preferred (``0`` to ``size - 1``); another takes the
            work if that one is busy and another is free, unless ``insist``.
        :param insist: wait for ``worker`` even while another is free (later work
            may pass this one meanwhile).
        :raises BrokenProcessPool: the worker died meanwhile (the next call
            starts a new one).

        While a worker process cannot start, the work waits: one is started again
        after 2 s, then twice as long each time up to a minute, not once per piece of
        work. The failure is logged with its cause once, then every 5 minutes, and
        its end.
        """
        return (await self.run_where(fn, *args, worker=worker, insist=insist))[1]

    async def run_where(self, fn: Callable[..., T], *args: Any, worker: int | None = None,
                        insist: bool = False) -> tuple[int | None, T]:
        """:meth:`run`, and which worker ran it (``None``: a thread of this process)."""
        if not self.size:
            return None, cast(T, await in_thread(fn, *args))
        while True:
            try:
                return await self._execute(_Job(worker, insist), fn, args)
            except WorkerStartFailed as exc:
                self._start_problem.failed(exc.cause)
                with self._awaiting_start():
                    await asyncio.sleep(self._next_start - time.monotonic())

    async def offload(self, fn: Callable[..., T], *args: Any, timeout: float | None = None) -> T:
        """:meth:`run` for plugins (:attr:`~gateway.plugin_types.PluginContext.offload`).

        While a worker process cannot start, ``fn`` runs in a thread of this process.

        :param timeout: seconds ``fn`` may take once it has a worker (a new one's
            start included); then the worker is killed and left behind, not waited
            for (one stuck on a file system that hangs may not end before the file
            system answers), and the next piece of work starts a new one.
        :raises WorkerLost: the worker died meanwhile; calling again may succeed.
        :raises TimeoutError: ``fn`` ran longer than ``timeout``.
        """
        if not self.size:
            return cast(T, await in_thread(fn, *args, timeout=timeout))
        try:
            return (await self._execute(_Job(None), fn, args, timeout))[1]
        except BrokenProcessPool:
            raise WorkerLost(f"a worker process died while running {fn.__name__}") from None
        except WorkerStartFailed as exc:
            self._start_problem.failed(exc.cause)
            return cast(T, await in_thread(fn, *args, timeout=timeout))

    async def _execute(self, job: _Job, fn: Callable[..., T], args: tuple[Any, ...],
                       timeout: float | None = None) -> tuple[int, T]:
        """Wait for ``job``'s turn, then run ``fn(*args)`` in the worker it got, for up to
        ``timeout`` seconds."""
        self._waiting.append(job)
        self._dispatch()
        try:
            index = await job.turn
        except asyncio.CancelledError:
            if job in self._waiting:
                self._waiting.remove(job)
            if job.turn.done() and not job.turn.cancelled():
                self._free(job.turn.result())
            raise
        limit = asyncio.timeout(timeout)
        pool = self._pools[index]
        try:
            async with limit:
                if pool is None:
                    with self._awaiting_start():
                        pool = await self._spawn(index)
                return index, await asyncio.get_running_loop().run_in_executor(pool, fn, *args)
        except BrokenProcessPool:  # (from the work: a start that fails is WorkerStartFailed)
            if pool is not None and self._pools[index] is pool:  # not yet replaced meanwhile
                log.error("a worker process died; starting a new one")
                self._drop(index, pool)
            raise
        except TimeoutError:
            if limit.expired() and pool is not None:  # (a start cut short was abandoned by it)
                log.warning("a worker process ran %s for over %gs: killed and left behind;"
                            " starting a new one", fn.__name__, timeout)
                self._abandon(index, pool)
            raise
        finally:
            self._free(index)

    @contextlib.contextmanager
    def _awaiting_start(self) -> Iterator[None]:
        """Note, while in the block, that work waits for a worker process to start."""
        self._starts_awaited += 1
        self.waiting_for_start.set()
        try:
            yield
        finally:
            self._starts_awaited -= 1
            if not self._starts_awaited:
                self.waiting_for_start.clear()

    async def _spawn(self, index: int) -> ProcessPoolExecutor:
        """A new process for worker ``index``, once it has started (run its initializer).

        :raises WorkerStartFailed: it cannot start (its initializer failed, or took longer
            than ``start_timeout``: then it is killed and left behind); or one could not
            lately, and it is too early to try again (then at once: no process is spawned
            per piece of work).
        """
        if self._cannot_start is not None and time.monotonic() < self._next_start:
            raise WorkerStartFailed(self._cannot_start)
        pool = self._pools[index] = ProcessPoolExecutor(
            1, mp_context=multiprocessing.get_context("spawn"), initializer=_start_worker,
            initargs=(os.getpid(), self.nice, self._initializer, self._initargs))
        try:
            async with asyncio.timeout(self.start_timeout):
                cause = await asyncio.get_running_loop().run_in_executor(pool, _started)
        except BrokenProcessPool:
            cause = "the process died while starting"
        except TimeoutError:  # (a plugin whose import hangs, say)
            cause = (f"the process did not start within {self.start_timeout:g}s"
                     " ([gateway] worker_start_timeout); it was killed")
            self._abandon(index, pool)
        except BaseException:  # cancelled: not kept half started (its start may hang)
            self._abandon(index, pool)
            raise
        if cause is not None:
            self._drop(index, pool)
            self._cannot_start = cause
            self._next_start = time.monotonic() + self._start_delay
            self._start_delay = min(self._start_delay * 2, START_RETRY_MAX)
            raise WorkerStartFailed(cause)
        self._cannot_start, self._start_delay = None, START_RETRY_FIRST
        self._start_problem.ok()
        return pool

    def _drop(self, index: int, pool: ProcessPoolExecutor) -> None:
        """Stop ``pool``, worker ``index``'s (unless a new one replaced it): the next use
        starts a new one."""
        pool.shutdown(wait=False, cancel_futures=True)
        if self._pools[index] is pool:
            self._pools[index] = None

    def _abandon(self, index: int, pool: ProcessPoolExecutor) -> None:
        """Kill worker ``index`` and forget it, never waiting for it to end: one stuck in the
        kernel (uninterruptible sleep on a file system that hangs) ends only when the file
        system answers. The next piece of work for ``index`` starts a new one."""
        for pid in list(pool._processes or ()):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
                self._left.append(pid)
        self._drop(index, pool)

    def left_behind(self, wait: float = 0.0) -> list[int]:
        """The worker processes killed and left behind that have not ended, after waiting up
        to ``wait`` seconds for them: each is stuck in the kernel (uninterruptible sleep),
        and Python's own exit would wait for it."""
        deadline = time.monotonic() + wait
        while True:
            self._left = [pid for pid in self._left if _running(pid)]
            if not self._left or time.monotonic() >= deadline:
                return list(self._left)
            time.sleep(0.05)

    def _free(self, index: int) -> None:
        self._busy[index] = False
        self._dispatch()

    def _dispatch(self) -> None:
        """Give free workers the waiting work, oldest first, each piece to the worker it
        prefers where that one is free; work that insists on a busy worker waits."""
        for job in list(self._waiting):
            free = [w for w in range(self.size) if not self._busy[w]]
            if not free:
                return
            if job.insist and job.prefer not in free:
                continue
            self._waiting.remove(job)
            index = job.prefer if job.prefer in free else free[0]
            if not job.turn.cancelled():  # (its caller was cancelled while it waited)
                self._busy[index] = True
                job.turn.set_result(index)

    def close(self, *, at_once: bool = False) -> None:
        """Stop the worker processes, once their work is done or, ``at_once``, killed and not
        waited for (a drain cut short: a worker may hang on a file system, and what it did
        continues at the next start)."""
        for index, pool in enumerate(self._pools):
            if pool is not None:
                if at_once:
                    self._abandon(index, pool)
                else:
                    pool.shutdown(wait=True, cancel_futures=True)
                    self._pools[index] = None


def _running(pid: int) -> bool:
    """Whether ``pid``, a child of this process, has not ended (a zombie has ended)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except (FileNotFoundError, ProcessLookupError):  # (reaped as it was read: ESRCH)
        return False
    state, parent = stat.rsplit(")", 1)[1].split()[:2]
    return state != "Z" and int(parent) == os.getpid()


def _nothing() -> None:
    """The job :meth:`WorkerPool.start` gives each worker, so that it starts."""


#: Why this worker process's initializer failed (``None``: it did not).
_start_failure: str | None = None


def _started() -> str | None:
    """A worker process's first job: why it could not start (``None``: it started)."""
    return _start_failure


_PR_SET_PDEATHSIG = 1


def _start_worker(parent: int, nice: int, initializer: Callable[..., None] | None,
                  initargs: tuple[Any, ...]) -> None:
    """Tie this worker's life to the daemon's, lower its priority, run the pool's initializer
    (a failure is kept for :func:`_started`).

    A daemon killed with SIGKILL (OOM killer, an operator, a crash test)
    cannot stop its workers, and they would wait for work forever: on Linux
    the kernel kills them when the daemon dies (``PR_SET_PDEATHSIG``).
    """
    if sys.platform == "linux":
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)
    if os.getppid() != parent:  # the daemon died before the line above took effect
        os._exit(1)
    if nice:
        os.nice(nice)
    if initializer is not None:
        try:
            initializer(*initargs)
        except Exception as exc:  # the process stays, for its first job to say why (_started)
            global _start_failure
            _start_failure = f"{type(exc).__name__}: {' '.join(str(exc).split())}"


#: Allocations between young-generation collections (Python's default: 700).
GC_YOUNG_THRESHOLD = 50_000


def settle_gc() -> None:
    """Tune the garbage collector for a long-running process that has started up.

    What start-up built (plugins, schemas, configuration) lives as long as
    the process: ``gc.freeze`` keeps later collections from walking it. The
    batches of messages allocate many short-lived containers; collecting the
    young generation every 700 allocations spent a few per cent of the CPU.
    """
    gc.freeze()
    gc.set_threshold(GC_YOUNG_THRESHOLD, *gc.get_threshold()[1:])
