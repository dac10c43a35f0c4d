"""system_info: facts about this machine, checked against independent sources."""

from __future__ import annotations

import os
from pathlib import Path

import openvino as ov
import pytest

from assistant.config import Settings
from assistant.errors import ToolArgumentError
from assistant.tools.base import ToolContext
from assistant.tools.sysinfo import ISA_FLAGS, SYSTEM_INFO, int8_summary, isa_names, system_info


def _cpu_flags() -> set[str] | None:
    cpuinfo = Path("/proc/cpuinfo")
    if not cpuinfo.exists():
        return None
    for line in cpuinfo.read_text().splitlines():
        if line.startswith("flags"):
            return set(line.split(":", 1)[1].split())
    return None


@pytest.fixture(scope="module")
def info() -> dict:
    return system_info()


def test_cores_and_memory_are_plausible(info: dict) -> None:
    cpu = info["cpu"]
    assert cpu["logical_cores"] == os.cpu_count()
    if cpu["physical_cores"] is not None:
        assert 1 <= cpu["physical_cores"] <= cpu["logical_cores"]
    assert 0 < info["memory"]["available_gb"] <= info["memory"]["total_gb"]


def test_transparent_huge_page_mode_is_the_kernel_setting(info: dict) -> None:
    setting = Path("/sys/kernel/mm/transparent_hugepage/enabled")
    if not setting.is_file():
        assert info["memory"]["transparent_huge_pages"] is None
        return
    selected = [word[1:-1] for word in setting.read_text().split() if word.startswith("[")]
    assert [info["memory"]["transparent_huge_pages"]] == selected


def test_cpu_name_matches_openvino(info: dict) -> None:
    assert info["cpu"]["name"] == ov.Core().get_property("CPU", "FULL_DEVICE_NAME")


def test_isa_flags_match_proc_cpuinfo(info: dict) -> None:
    flags = _cpu_flags()
    if flags is None:
        pytest.skip("no /proc/cpuinfo")
    assert set(info["cpu"]["isa"]) == set(ISA_FLAGS)
    for flag, present in info["cpu"]["isa"].items():
        assert present == (flag in flags), flag


def test_versions_and_devices(info: dict) -> None:
    assert info["openvino_version"] == ov.get_version()
    assert info["devices"] == ov.Core().available_devices
    assert "CPU" in info["devices"]
    assert set(info["device_names"]) == set(info["devices"])
    assert info["python"].count(".") == 2
    assert info["os"]


def test_int8_note_reflects_this_cpu(info: dict) -> None:
    isa = info["cpu"]["isa"]
    assert info["int8_note"] == int8_summary(isa)
    assert ("AMX matrix tiles" in info["int8_note"]) == (isa["amx_int8"] or isa["amx_tile"])


@pytest.mark.parametrize(("flags", "expected", "absent"), [
    ({"amx_tile", "amx_int8", "amx_bf16", "avx512_vnni"}, "AMX-INT8, AMX-BF16", None),
    ({"avx512f", "avx512_vnni"}, "AVX-512 VNNI", "AMX"),
    ({"avx2", "avx_vnni"}, "AVX-VNNI", "AMX matrix"),
    ({"avx2"}, "no VNNI", "AMX matrix"),
    (set(), "No AVX2", "AMX matrix"),
])
def test_int8_summary_by_isa(flags: set[str], expected: str, absent: str | None) -> None:
    text = int8_summary({flag: flag in flags for flag in ISA_FLAGS})
    assert expected in text
    if absent:
        assert absent not in text
    # named by what the CPU reports, not by one vendor's marketing (an AMD EPYC has VNNI too)
    assert "Intel" not in text and "DL Boost" not in text


def test_isa_names_are_the_reported_flags() -> None:
    isa = {flag: flag in {"avx2", "avx512_vnni", "amx_bf16"} for flag in ISA_FLAGS}
    assert isa_names(isa) == ["AVX2", "AVX-512 VNNI", "AMX-BF16"]


def test_tool_declaration_takes_no_arguments(tmp_path: Path) -> None:
    settings = Settings(cache_dir=tmp_path)
    assert SYSTEM_INFO.validate({}, settings) == {}
    with pytest.raises(ToolArgumentError):
        SYSTEM_INFO.validate({"verbose": True}, settings)
    result = SYSTEM_INFO.function({}, ToolContext(settings=settings))
    assert result["cpu"]["logical_cores"] == os.cpu_count()
