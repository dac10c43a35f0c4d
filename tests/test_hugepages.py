"""Huge pages for the memory a model load allocates: region bookkeeping, and the real madvise calls."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest

from assistant import hugepages
from assistant.config import Settings
from assistant.errors import ConfigError
from assistant.hugepages import HUGE_PAGE, anonymous_regions, back_with_huge_pages, new_regions

MB = 1 << 20


def _smaps_entry(start: int, end: int, perms: str, inode: str, name: str, rss_kb: int) -> str:
    return (f"{start:x}-{end:x} {perms} 00000000 00:00 {inode} {name}\n"
            f"Size: {(end - start) // 1024} kB\nRss: {rss_kb} kB\nAnonHugePages: 0 kB\n")


def test_only_private_anonymous_writable_resident_memory_is_listed():
    base = 0x7F0000000000
    entries = [
        (base, base + 8 * MB, "rw-p", "0", "", 8 * 1024),  # malloc'ed, fully touched: listed
        (base + 8 * MB, base + 16 * MB, "rw-p", "0", "", 1024),  # 1 of 8 MB touched (a stack): left out
        (base + 16 * MB, base + 20 * MB, "r--p", "0", "", 4096),  # read-only
        (base + 20 * MB, base + 24 * MB, "rw-s", "0", "", 4096),  # shared
        (base + 24 * MB, base + 28 * MB, "rw-p", "1234", "/tmp/weights.bin", 4096),  # file-backed
        (base + 28 * MB, base + 30 * MB, "rw-p", "0", "[stack]", 2048),
        (0x5600000000, 0x5600000000 + 4 * MB, "rw-p", "0", "[heap]", 4096),  # brk heap: listed
    ]
    smaps = "".join(_smaps_entry(*entry) for entry in entries)
    assert anonymous_regions(smaps, min_resident=0.5) == [(base, base + 8 * MB),
                                                          (0x5600000000, 0x5600000000 + 4 * MB)]
    assert (base + 8 * MB, base + 16 * MB) in anonymous_regions(smaps, min_resident=0.0)


def test_new_regions_are_what_grew_cut_to_whole_huge_pages():
    start = 64 * HUGE_PAGE
    before = [(start, start + 3 * HUGE_PAGE)]
    after = [(start, start + 10 * HUGE_PAGE + 4096),  # grew by 7 huge pages and a bit
             (start + 20 * HUGE_PAGE + 4096, start + 23 * HUGE_PAGE),  # new, unaligned start
             (start + 30 * HUGE_PAGE, start + 30 * HUGE_PAGE + HUGE_PAGE // 2)]  # new, smaller than a page
    assert new_regions(before, after) == [(start + 3 * HUGE_PAGE, start + 10 * HUGE_PAGE),
                                          (start + 21 * HUGE_PAGE, start + 23 * HUGE_PAGE)]
    assert new_regions(after, after) == []


def test_a_hole_in_the_old_mapping_is_new():
    start = 8 * HUGE_PAGE
    before = [(start, start + 2 * HUGE_PAGE), (start + 6 * HUGE_PAGE, start + 8 * HUGE_PAGE)]
    assert new_regions(before, [(start, start + 8 * HUGE_PAGE)]) == [(start + 2 * HUGE_PAGE,
                                                                      start + 6 * HUGE_PAGE)]


def _anon_huge_kb(address: int) -> int:
    """AnonHugePages of the mapping that holds `address`, from /proc/self/smaps."""
    inside = False
    for line in Path("/proc/self/smaps").read_text().splitlines():
        if match := re.match(r"^([0-9a-f]+)-([0-9a-f]+) ", line):
            inside = int(match[1], 16) <= address < int(match[2], 16)
        elif inside and line.startswith("AnonHugePages:"):
            return int(line.split()[1])
    return 0


@pytest.mark.skipif(hugepages.thp_unavailable() is not None, reason=str(hugepages.thp_unavailable()))
def test_memory_allocated_after_the_snapshot_gets_huge_pages_and_keeps_its_contents():
    before = anonymous_regions()
    data = np.random.default_rng(0).integers(0, 255, size=64 * MB, dtype=np.uint8)  # touched: resident
    checksum = int(data.sum(dtype=np.uint64))
    report = back_with_huge_pages(before)
    assert report.skipped is None
    assert report.advised_bytes >= 60 * MB
    assert int(data.sum(dtype=np.uint64)) == checksum
    if report.collapsed_bytes:  # Linux 6.1+ (MADV_COLLAPSE): in huge pages already
        assert _anon_huge_kb(data.ctypes.data + 32 * MB) >= 2048
    assert "collapsed" in report.summary()


def test_nothing_new_nothing_advised():
    report = back_with_huge_pages(anonymous_regions())
    assert report.advised_bytes <= 8 * MB  # only what the call itself allocated, if anything


def test_the_setting_comes_from_the_environment():
    assert Settings.from_env({}).huge_pages is True
    assert Settings.from_env({"OVPERF_HUGE_PAGES": "0"}).huge_pages is False
    assert Settings.from_env({"OVPERF_HUGE_PAGES": "Off"}).huge_pages is False
    with pytest.raises(ConfigError, match="OVPERF_HUGE_PAGES must be on or off"):
        Settings.from_env({"OVPERF_HUGE_PAGES": "maybe"})
