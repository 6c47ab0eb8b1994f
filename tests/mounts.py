"""Real file-system faults for tests: a private mount namespace, small tmpfs, read-only binds,
file systems that hang (frozen: writes wait; unanswering: every look-up waits).

A test that needs mounts runs its scenario with :func:`run_isolated`: a
child process in a mount namespace of its own (``unshare -m``, propagation
private), so whatever it mounts is seen by it and its children only and
disappears with it. The helpers that mount refuse to run outside such a
namespace. Needs root and ``unshare`` (the test is skipped without them).

Run a scenario by hand with::

    unshare -m --propagation private python -m tests.mounts tests.test_recovery:NAME ARG...
"""

from __future__ import annotations

import asyncio
import importlib
import inspect
import os
import shutil
import signal
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

ROOT = Path(__file__).parent.parent
#: The mount namespace of the test run, handed to the child (``/proc/1`` may be out of reach).
_HOST_NAMESPACE = "ECH_TEST_HOST_MOUNT_NS"


def run_isolated(target: str, *args: str, timeout: float = 120) -> str:
    """Run ``module:function(*args)`` (async or not) in its own mount namespace; its output.

    The calling test fails with the child's output when the scenario fails.
    """
    if os.geteuid() != 0 or shutil.which("unshare") is None:
        pytest.skip("needs root and unshare(1) for a private mount namespace")
    cmd = ["unshare", "-m", "--propagation", "private",
           sys.executable, "-m", "tests.mounts", target, *args]
    env = {**os.environ, _HOST_NAMESPACE: os.readlink("/proc/self/ns/mnt")}
    proc = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True,
                          timeout=timeout, check=False)
    output = proc.stdout + proc.stderr
    if proc.returncode != 0:
        pytest.fail(f"{target} failed in its mount namespace (exit {proc.returncode}):\n{output}")
    return output


def require_fuse() -> None:
    """Skip the calling test where FUSE is missing (:func:`unanswering` needs it); under CI,
    whose machine has it (the kernel's /dev/fuse, no package), fail instead: a skip there
    would hide that the hung-share tests did not run."""
    if not os.path.exists("/dev/fuse"):
        if os.environ.get("CI") == "true":
            pytest.fail("/dev/fuse is missing: the tests of a share that never answers need it")
        pytest.skip("needs /dev/fuse for a file system that never answers")


def _require_private() -> None:
    host = os.environ.get(_HOST_NAMESPACE)
    if host is None or os.readlink("/proc/self/ns/mnt") == host:
        raise RuntimeError("refusing to mount outside a private mount namespace (run_isolated)")


def _mount(*args: str) -> None:
    _require_private()
    subprocess.run(["mount", *args], check=True, capture_output=True)


def tmpfs(path: Path, size: str) -> None:
    """Mount an empty tmpfs of ``size`` (e.g. ``"2m"``) on ``path``."""
    path.mkdir(parents=True, exist_ok=True)
    _mount("-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(path))


def read_only(path: Path) -> None:
    """Make ``path`` read-only: bind it onto itself, then remount the bind read-only."""
    _mount("--bind", str(path), str(path))
    _mount("-o", "remount,bind,ro", str(path))


def writable(path: Path) -> None:
    """Undo :func:`read_only`: the bind goes, the folder underneath is writable again."""
    _mount("-o", "remount,bind,rw", str(path))
    subprocess.run(["umount", str(path)], check=True, capture_output=True)


def ext4(path: Path, size: str = "64M") -> None:
    """Mount a new ext4 file system of ``size`` on ``path``, from an image file beside it
    (``.<name>.img``, on the file system ``path`` is on): one :func:`frozen` can hang."""
    image = path.parent / f".{path.name}.img"
    path.mkdir(parents=True, exist_ok=True)
    subprocess.run(["truncate", "-s", size, str(image)], check=True)
    subprocess.run(["mkfs.ext4", "-q", "-F", str(image)], check=True, capture_output=True)
    _mount("-o", "loop", str(image), str(path))


@contextmanager
def frozen(path: Path, safety: float = 90) -> Iterator[None]:
    """Freeze the file system mounted on ``path`` (:func:`ext4`) while in the block.

    As on a file server that stopped answering: every call that would change it
    waits, and a file system on a loop device backed by an image on it waits to
    write back (``syncfs``). Not in an interruptible wait, like a network share's,
    but in uninterruptible sleep: not even SIGKILL ends such a process before the
    file system thaws. If the block is not left (the test hangs), the file system
    thaws after ``safety`` seconds anyway, so that its processes end.
    """
    _require_private()
    if not os.path.ismount(path):  # freezing whatever holds it could be the machine's root
        raise RuntimeError(f"refusing to freeze {path}: not a mount point")
    subprocess.run(["fsfreeze", "--freeze", str(path)], check=True)
    thaw = subprocess.Popen(["sh", "-c", f'sleep {safety}; fsfreeze --unfreeze "{path}"'],
                            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL, start_new_session=True)
    try:
        yield
    finally:
        os.killpg(thaw.pid, signal.SIGKILL)  # its shell and its sleep
        thaw.wait()
        subprocess.run(["fsfreeze", "--unfreeze", str(path)], check=True)


@contextmanager
def unanswering(path: Path, safety: float = 60) -> Iterator[Callable[[], bool]]:
    """Mount on ``path`` a file system that never answers, while in the block.

    As a network share whose server is gone (an NFS hard mount): every call that
    looks up a name in it (``path / "done"``: a stat, an open, a listing, an
    inotify watch) waits for an answer that never comes, where :func:`frozen`
    holds up only the calls that write. The wait is killable, as a share's: a
    process exits although one of its threads waits there. It is a FUSE mount
    whose device nobody reads. On leaving the block the connection is cut: the
    calls waiting fail (``ENOTCONN``), and the mount goes. If the block is not
    left within ``safety`` seconds (the test hangs, an event loop stuck in such a
    call, say), it is cut then.

    Yields a test of whether it still hangs (was not cut by ``safety``).
    """
    _require_private()
    path.mkdir(parents=True, exist_ok=True)
    device = os.open("/dev/fuse", os.O_RDWR | os.O_CLOEXEC)
    cut = threading.Event()
    lock = threading.Lock()

    def cut_off() -> None:
        with lock:
            if not cut.is_set():
                cut.set()
                os.close(device)

    try:
        subprocess.run(["mount", "-t", "fuse", "-o",
                        f"fd={device},rootmode=40000,user_id=0,group_id=0", "unanswering",
                        str(path)], check=True, capture_output=True, pass_fds=[device])
    except BaseException:
        cut_off()
        raise
    timer = threading.Timer(safety, cut_off)
    timer.daemon = True
    timer.start()
    try:
        yield lambda: not cut.is_set()
    finally:
        timer.cancel()
        cut_off()
        subprocess.run(["umount", "--lazy", str(path)], check=True, capture_output=True)


def fill(folder: Path, name: str = "filler") -> Path:
    """Fill the file system of ``folder`` to the last byte with one file; return it."""
    filler = folder / name
    fd = os.open(filler, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    try:
        block = b"\0" * 65536
        while True:
            try:
                os.write(fd, block)
            except OSError:
                if len(block) == 1:
                    break
                block = block[: len(block) // 2]
    finally:
        os.close(fd)
    return filler


def _main(target: str, *args: str) -> None:
    module, _, name = target.partition(":")
    func = getattr(importlib.import_module(module), name)
    result = func(*args)
    if inspect.isawaitable(result):
        asyncio.run(result)  # type: ignore[arg-type]


if __name__ == "__main__":
    _main(*sys.argv[1:])
