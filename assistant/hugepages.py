"""Back the process's resident memory with transparent huge pages (Linux), for faster decoding.

Decoding a small LLM on the CPU streams every weight once per token. With 4 KiB pages that is one TLB
miss per 4 KiB read; with 2 MiB pages, one per 2 MiB. The kernel only gives huge pages to memory that
asks for them (`/sys/kernel/mm/transparent_hugepage/enabled` is usually `madvise`), and OpenVINO does not
ask. So after the model is loaded, every 2 MiB stretch of anonymous memory that is (almost) all in RAM
(`/proc/self/pagemap`) is advised (MADV_HUGEPAGE) and collapsed into a huge page at once (MADV_COLLAPSE,
Linux 6.1+; older kernels leave it to khugepaged, in the background). Contents do not change, and
untouched memory (thread stacks, reserved arenas) is left alone, so nothing new is committed.

Looking at what is resident rather than at what the load allocated matters in a long-lived process: the
allocator reuses freed memory, so a model loaded after other work lands in old mappings.

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
import os
import sys
from dataclasses import dataclass
from pathlib import Path

log = logging.getLogger(__name__)

HUGE_PAGE = 2 << 20
MADV_HUGEPAGE = 14
MADV_COLLAPSE = 25
MIN_FILL = 0.9  # share of a 2 MiB stretch that must be resident before it is collapsed
THP_SETTING = Path("/sys/kernel/mm/transparent_hugepage/enabled")
PAGEMAP = Path("/proc/self/pagemap")

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


def anonymous_regions(maps: str | None = None) -> list[Region]:
    """The process's private anonymous read-write mappings (heap and mmap'ed allocations)."""
    if maps is None:
        try:
            maps = Path("/proc/self/maps").read_text()
        except OSError:
            return []
    regions = []
    for line in maps.splitlines():
        fields = line.split()
        if len(fields) < 5 or not fields[1].startswith("rw") or fields[1][3:4] != "p" or fields[4] != "0":
            continue
        if (fields[5] if len(fields) > 5 else "") not in ("", "[heap]"):
            continue
        start, end = (int(x, 16) for x in fields[0].split("-"))
        regions.append((start, end))
    return regions


def huge_page_spans(regions: list[Region]) -> list[Region]:
    """The whole 2 MiB-aligned stretches inside `regions`."""
    spans = []
    for start, end in regions:
        start = -(-start // HUGE_PAGE) * HUGE_PAGE
        end = end // HUGE_PAGE * HUGE_PAGE
        if end > start:
            spans.append((start, end))
    return spans


def resident_spans(spans: list[Region], pagemap: Path = PAGEMAP, min_fill: float = MIN_FILL) -> list[Region]:
    """The huge-page-sized pieces of `spans` with at least `min_fill` of their pages in RAM, adjacent ones
    merged (bit 63 of each 8-byte /proc/self/pagemap entry: page present)."""
    import numpy as np

    page = os.sysconf("SC_PAGE_SIZE")
    per_huge = HUGE_PAGE // page
    dense: list[Region] = []
    try:
        with pagemap.open("rb") as entries:
            for start, end in spans:
                entries.seek(start // page * 8)
                present = np.frombuffer(entries.read((end - start) // page * 8), dtype=np.uint64) >> np.uint64(63)
                counts = present.reshape(-1, per_huge).sum(axis=1)
                for i in np.flatnonzero(counts >= min_fill * per_huge):
                    chunk = start + int(i) * HUGE_PAGE
                    if dense and dense[-1][1] == chunk:
                        dense[-1] = (dense[-1][0], chunk + HUGE_PAGE)
                    else:
                        dense.append((chunk, chunk + HUGE_PAGE))
    except (OSError, ValueError):
        return []
    return dense


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


def back_with_huge_pages() -> HugePageReport:
    """Advise and collapse the resident anonymous memory of this process into huge pages (see above)."""
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
    for start, end in resident_spans(huge_page_spans(anonymous_regions())):
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
