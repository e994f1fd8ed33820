"""Process trees: finding and stopping everything a process started, and dying with a parent.

Stopping goes by the process *tree* (parent links), never by process group: Playwright starts
its driver and Chromium in process groups of their own, so ``killpg`` on a crawl misses them.
A tree is collected before anything is signalled, because a child whose parent dies is
re-parented to init and can no longer be found from the crawl's pid.
"""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import os
import sys

import psutil

_PR_SET_PDEATHSIG = 1  # <linux/prctl.h>


def descendants(pid: int) -> list[psutil.Process]:
    """Every live descendant of ``pid`` (children, their children, ...); empty if it is gone."""
    try:
        return psutil.Process(pid).children(recursive=True)
    except (psutil.NoSuchProcess, psutil.ZombieProcess, psutil.AccessDenied):
        return []


def kill_all(processes: list[psutil.Process]) -> None:
    """SIGKILLs each process that is still the one collected (psutil checks pid reuse)."""
    for process in processes:
        with contextlib.suppress(psutil.NoSuchProcess, psutil.ZombieProcess, psutil.AccessDenied):
            if process.is_running():
                process.kill()
    psutil.wait_procs(processes, timeout=5)


def kill_tree(pid: int) -> None:
    """SIGKILLs ``pid`` and all its descendants, collected before the first signal."""
    try:
        root = [psutil.Process(pid)]
    except (psutil.NoSuchProcess, psutil.ZombieProcess, psutil.AccessDenied):
        root = []
    kill_all(root + descendants(pid))


def die_with_parent(signum: int) -> bool:
    """Asks Linux to send ``signum`` to this process when the thread that forked it exits.

    Returns False where ``prctl`` is not available (other systems): callers then rely on
    their own watchdog. Callers must compare ``os.getppid()`` with the expected parent right
    after, since the parent may have died before this call.
    """
    if not sys.platform.startswith("linux"):
        return False
    libc_name = ctypes.util.find_library("c")
    if libc_name is None:
        return False
    libc = ctypes.CDLL(libc_name, use_errno=True)
    return int(libc.prctl(_PR_SET_PDEATHSIG, signum, 0, 0, 0)) == 0


def kill_descendants_and_exit(code: int) -> None:
    """Ends this process at once, and everything it started first (Chromium included)."""
    kill_all(descendants(os.getpid()))
    os._exit(code)
