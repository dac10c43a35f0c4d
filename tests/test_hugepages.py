"""Huge pages for resident memory: mapping and pagemap bookkeeping, and the real madvise calls."""

from __future__ import annotations

import mmap
import os
import re
from pathlib import Path

import numpy as np
import pytest

from assistant import hugepages
from assistant.config import Settings
from assistant.errors import ConfigError
from assistant.hugepages import HUGE_PAGE, anonymous_regions, back_with_huge_pages, huge_page_spans, resident_spans

MB = 1 << 20
PAGE = os.sysconf("SC_PAGE_SIZE")


def test_only_private_anonymous_writable_mappings_are_listed():
    maps = "\n".join([
        "7f0000000000-7f0000800000 rw-p 00000000 00:00 0 ",  # malloc'ed: listed
        "7f0000800000-7f0001000000 r--p 00000000 00:00 0 ",  # read-only
        "7f0001000000-7f0001800000 rw-s 00000000 00:05 42 /dev/zero (deleted)",  # shared
        "7f0001800000-7f0002000000 rw-p 00001000 08:01 1234 /tmp/weights.bin",  # file-backed
        "7ffc00000000-7ffc00200000 rw-p 00000000 00:00 0 [stack]",
        "560000000000-560000400000 rw-p 00000000 00:00 0 [heap]",  # brk heap: listed
    ])
    assert anonymous_regions(maps) == [(0x7F0000000000, 0x7F0000800000), (0x560000000000, 0x560000400000)]


def test_spans_are_cut_to_whole_huge_pages():
    base = 64 * HUGE_PAGE
    assert huge_page_spans([(base + 4096, base + 3 * HUGE_PAGE + 4096), (base + 5 * HUGE_PAGE,
                                                                        base + 5 * HUGE_PAGE + HUGE_PAGE // 2)]) \
        == [(base + HUGE_PAGE, base + 3 * HUGE_PAGE)]


def test_only_huge_pages_that_are_nearly_all_resident_are_chosen(tmp_path):
    per_huge = HUGE_PAGE // PAGE
    base = 4 * HUGE_PAGE  # a small address keeps the fake pagemap file small
    present = np.zeros(8 * per_huge, dtype=np.uint64)
    present[0 * per_huge:2 * per_huge] = 1  # huge pages 0 and 1: all resident (merged into one span)
    present[3 * per_huge:3 * per_huge + int(0.95 * per_huge)] = 1  # 3: 95% resident
    present[5 * per_huge:5 * per_huge + per_huge // 2] = 1  # 5: half resident, left alone
    pagemap = tmp_path / "pagemap"
    pagemap.write_bytes(b"\0" * (base // PAGE * 8) + (present << np.uint64(63)).tobytes())
    spans = resident_spans([(base, base + 8 * HUGE_PAGE)], pagemap=pagemap, min_fill=0.9)
    assert spans == [(base, base + 2 * HUGE_PAGE), (base + 3 * HUGE_PAGE, base + 4 * HUGE_PAGE)]
    assert resident_spans([(base, base + 8 * HUGE_PAGE)], pagemap=tmp_path / "missing") == []


def _mapping_field_kb(address: int, field: str) -> int:
    """`field` (e.g. AnonHugePages, Rss) of the mapping that holds `address`, from /proc/self/smaps."""
    inside = False
    for line in Path("/proc/self/smaps").read_text().splitlines():
        if match := re.match(r"^([0-9a-f]+)-([0-9a-f]+) ", line):
            inside = int(match[1], 16) <= address < int(match[2], 16)
        elif inside and line.startswith(f"{field}:"):
            return int(line.split()[1])
    return 0


@pytest.mark.skipif(hugepages.thp_unavailable() is not None, reason=str(hugepages.thp_unavailable()))
def test_resident_memory_gets_huge_pages_and_untouched_memory_stays_uncommitted():
    data = np.random.default_rng(0).integers(0, 255, size=64 * MB, dtype=np.uint8)  # touched: resident
    checksum = int(data.sum(dtype=np.uint64))
    sparse = mmap.mmap(-1, 64 * MB)  # anonymous, private; one page in 32 touched
    for offset in range(0, 64 * MB, 32 * PAGE):
        sparse[offset] = 1
    sparse_address = np.frombuffer(sparse, dtype=np.uint8).ctypes.data
    rss_before = _mapping_field_kb(sparse_address, "Rss")

    report = back_with_huge_pages()

    assert report.skipped is None and report.advised_bytes >= 60 * MB
    assert int(data.sum(dtype=np.uint64)) == checksum
    if report.collapsed_bytes:  # Linux 6.1+ (MADV_COLLAPSE): in huge pages already
        assert _mapping_field_kb(data.ctypes.data + 32 * MB, "AnonHugePages") >= 2048
    assert _mapping_field_kb(sparse_address, "Rss") <= rss_before + 2048
    assert "collapsed" in report.summary()
    sparse.close()


def test_the_setting_comes_from_the_environment():
    assert Settings.from_env({}).huge_pages is True
    assert Settings.from_env({"OVPERF_HUGE_PAGES": "0"}).huge_pages is False
    assert Settings.from_env({"OVPERF_HUGE_PAGES": "Off"}).huge_pages is False
    with pytest.raises(ConfigError, match="OVPERF_HUGE_PAGES must be on or off"):
        Settings.from_env({"OVPERF_HUGE_PAGES": "maybe"})
