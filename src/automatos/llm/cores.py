"""How many physical cores this process may use: llama.cpp's threads, one per core.

Hyper-threads share a core's arithmetic units, and llama.cpp's threads spin-wait on each
other, so one thread per physical core is its fastest; llama-cpp-python's own default
(half the logical CPUs, at least one) picked one thread on this two-core VM.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path

__all__ = ["physical_cores"]


def physical_cores(
    cpus: Iterable[int] | None = None,
    *,
    sysfs: Path = Path("/sys/devices/system/cpu"),
    cpuinfo: Path = Path("/proc/cpuinfo"),
    cgroup: Path = Path("/sys/fs/cgroup"),
) -> int:
    """Physical cores among the CPUs this process may run on (``cpus``, by default its
    affinity), and no more than its control group's CPU quota (a container's ``--cpus``):
    the default thread count of the model.

    llama.cpp's generation is bound by memory and its threads wait for each other at every
    layer: a second hardware thread of a core adds contention, not speed, and a thread on a
    CPU the process may not use, or beyond its quota, only waits. Cores are told apart by
    Linux's topology files, else by ``/proc/cpuinfo``; where neither says, every available
    CPU counts as a core.
    """
    if cpus is None:
        try:
            cpus = os.sched_getaffinity(0)
        except (AttributeError, OSError):  # not Linux
            return max(1, os.cpu_count() or 1)
    allowed = set(cpus)
    if not allowed:
        return 1
    cores = _cores_from_sysfs(allowed, sysfs)
    if cores is None:
        cores = _cores_from_cpuinfo(allowed, cpuinfo)
    if cores is None:
        cores = len(allowed)
    quota = _cpu_quota(cgroup)
    return max(1, min(cores, quota) if quota is not None else cores)


def _cpu_quota(root: Path) -> int | None:
    """Whole CPUs the control group may use, when it is limited (cgroup v2, then v1)."""
    try:
        quota, period = (root / "cpu.max").read_text().split()[:2]
        return None if quota == "max" else max(1, int(quota) // int(period))
    except (OSError, ValueError):
        pass
    try:
        quota_us = int((root / "cpu/cpu.cfs_quota_us").read_text())
        period_us = int((root / "cpu/cpu.cfs_period_us").read_text())
    except (OSError, ValueError):
        return None
    return max(1, quota_us // period_us) if quota_us > 0 and period_us > 0 else None


def _cores_from_sysfs(cpus: set[int], root: Path) -> int | None:
    try:
        return len(
            {
                (
                    (root / f"cpu{cpu}/topology/physical_package_id").read_text().strip(),
                    (root / f"cpu{cpu}/topology/core_id").read_text().strip(),
                )
                for cpu in cpus
            }
        )
    except OSError:
        return None


def _cores_from_cpuinfo(cpus: set[int], path: Path) -> int | None:
    try:
        text = path.read_text()
    except OSError:
        return None
    cores: set[tuple[str, str]] = set()
    for block in text.split("\n\n"):
        fields = {}
        for line in block.splitlines():
            key, _, value = line.partition(":")
            fields[key.strip()] = value.strip()
        if "processor" not in fields:
            continue
        if "core id" not in fields:  # this kernel or architecture does not say
            return None
        if fields["processor"].isdigit() and int(fields["processor"]) in cpus:
            cores.add((fields.get("physical id", "0"), fields["core id"]))
    return len(cores) or None
