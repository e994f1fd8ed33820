"""Finding processes a test started, however they were re-parented: by an environment marker."""

from __future__ import annotations

import os

import psutil


def marked_processes(variable: str, marker: str) -> list[psutil.Process]:
    """Live processes (not this one) whose environment has ``variable=marker``: a browser or a
    crawl started with it and everything they spawned, Playwright's driver and Chromium included.
    """
    found = []
    for process in psutil.process_iter(["pid", "name"]):
        if process.pid == os.getpid():
            continue
        try:
            if process.status() == psutil.STATUS_ZOMBIE:
                continue
            if process.environ().get(variable) == marker:
                found.append(process)
        except (psutil.AccessDenied, psutil.NoSuchProcess, psutil.ZombieProcess):
            continue
    return found


def kill_all(processes: list[psutil.Process]) -> None:
    """SIGKILL for each process still running; one that ended meanwhile is fine (a clean-up
    races the processes it cleans up: Playwright's driver exits on its own after SIGINT).
    """
    for process in processes:
        try:
            process.kill()
        except psutil.NoSuchProcess:
            continue
