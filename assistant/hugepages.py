"""Back the memory a model load allocated with transparent huge pages (Linux), for faster decoding.

Decoding a small LLM on the CPU streams every weight once per token. With 4 KiB pages that is one TLB
miss per 4 KiB read; with 2 MiB pages, one per 2 MiB. The kernel only gives huge pages to memory that
asks for them (`/sys/kernel/mm/transparent_hugepage/enabled` is usually `madvise`), and OpenVINO does not
ask. So after loading, the anonymous memory that appeared during the load is advised (MADV_HUGEPAGE) and
collapsed into huge pages at once (MADV_COLLAPSE, Linux 6.1+; older kernels fall back to khugepaged,
which collapses it in the background). The contents do not change.

OpenVINO's CPU plugin lays its weights out on the first inference, so llm.py calls this after a one-token
warm-up. Measured on the default model (2-core Xeon, plain decoding, fresh process per run): time per
output token 0.89x through OpenVINOLLM (3 pairs; 0.81-0.83x for direct OpenVINO inference), 0.96-1.0x
with `benchmarks.llm_compare`'s 600-token prompt; about 200 MB collapsed in 0.1-0.7 s; load +0.6-0.8 s
with the warm-up, which in turn takes 100-200 ms off the first request. The glibc tunable
`glibc.malloc.hugetlb=1` does part of this (0.87x direct) but has to be set before the process starts.
llama.cpp (benchmarks/llm_worker.py applies the same step) measured the same with and without it,
mmap'ed or not (within noise).
"""

from __future__ import annotations

import ctypes
import logging
import sys
from dataclasses import dataclass
from pathlib import Path

log = logging.getLogger(__name__)

HUGE_PAGE = 2 << 20
MADV_HUGEPAGE = 14
MADV_COLLAPSE = 25
THP_SETTING = Path("/sys/kernel/mm/transparent_hugepage/enabled")

Region = tuple[int, int]  # [start, end) addresses


@dataclass(frozen=True, kw_only=True)
class HugePageReport:
    """What `back_with_huge_pages` did: bytes advised and collapsed, or why nothing was done."""

    advised_bytes: int = 0
    collapsed_bytes: int = 0
    skipped: str | None = None

    def summary(self) -> str:
        """One line for logs and system info."""
        if self.skipped:
            return f"huge pages: not used ({self.skipped})"
        return (f"huge pages: {self.collapsed_bytes / 2**20:.0f} of {self.advised_bytes / 2**20:.0f} MiB "
                "collapsed now (the rest as the kernel finds time)")


def anonymous_regions(smaps: str | None = None, *, min_resident: float = 0.0) -> list[Region]:
    """The process's private anonymous read-write mappings (heap and mmap'ed allocations) of which at
    least `min_resident` is in memory (reserved but untouched memory, e.g. thread stacks, is left out:
    collapsing it would commit it)."""
    if smaps is None:
        try:
            smaps = Path("/proc/self/smaps").read_text()
        except OSError:
            return []
    regions = []
    current: Region | None = None
    for line in smaps.splitlines():
        fields = line.split()
        if fields and "-" in fields[0] and not fields[0].endswith(":"):
            current = None
            name = fields[5] if len(fields) > 5 else ""
            if (len(fields) >= 5 and fields[1].startswith("rw") and fields[1][3:4] == "p" and fields[4] == "0"
                    and name in ("", "[heap]")):
                start, end = (int(x, 16) for x in fields[0].split("-"))
                current = (start, end)
        elif current and fields[:1] == ["Rss:"]:
            if int(fields[1]) * 1024 >= min_resident * (current[1] - current[0]):
                regions.append(current)
            current = None
    return regions


def new_regions(before: list[Region], after: list[Region]) -> list[Region]:
    """Parts of `after` not covered by `before`, cut to whole huge pages (smaller leftovers dropped)."""
    pieces = []
    old = sorted(before)
    for start, end in sorted(after):
        cursor = start
        for old_start, old_end in old:
            if old_end <= cursor or old_start >= end:
                continue
            if old_start > cursor:
                pieces.append((cursor, old_start))
            cursor = max(cursor, old_end)
        if cursor < end:
            pieces.append((cursor, end))
    aligned = []
    for start, end in pieces:
        start = -(-start // HUGE_PAGE) * HUGE_PAGE
        end = end // HUGE_PAGE * HUGE_PAGE
        if end > start:
            aligned.append((start, end))
    return aligned


def thp_mode() -> str | None:
    """The system's transparent huge page mode (always, madvise or never), None if unknown."""
    try:
        setting = THP_SETTING.read_text()
    except OSError:
        return None
    start, end = setting.find("["), setting.find("]")
    return setting[start + 1:end] if 0 <= start < end else None


def thp_unavailable() -> str | None:
    """Why transparent huge pages cannot be used here, or None."""
    if not sys.platform.startswith("linux"):
        return "not Linux"
    mode = thp_mode()
    if mode is None:
        return "no transparent huge page support in this kernel"
    if mode == "never":
        return f"disabled by the system ({THP_SETTING} is 'never')"
    return None


def back_with_huge_pages(before: list[Region]) -> HugePageReport:
    """Advise and collapse the anonymous memory allocated since `before` (from `anonymous_regions()`)."""
    if reason := thp_unavailable():
        return HugePageReport(skipped=reason)
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        madvise = libc.madvise
    except (OSError, AttributeError):
        return HugePageReport(skipped="madvise is not available")
    madvise.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int]
    madvise.restype = ctypes.c_int
    advised = collapsed = 0
    for start, end in new_regions(before, anonymous_regions(min_resident=0.5)):
        if madvise(start, end - start, MADV_HUGEPAGE) != 0:
            continue
        advised += end - start
        # EINVAL before Linux 6.1 (no MADV_COLLAPSE: khugepaged collapses the range later) or for a range
        # the kernel cannot collapse now (EAGAIN, ENOMEM): the advice stays either way
        if madvise(start, end - start, MADV_COLLAPSE) == 0:
            collapsed += end - start
    report = HugePageReport(advised_bytes=advised, collapsed_bytes=collapsed)
    log.info(report.summary())
    return report
