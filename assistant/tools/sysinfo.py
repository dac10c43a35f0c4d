"""The system_info tool: the hardware and software facts that explain benchmark numbers."""

from __future__ import annotations

import platform
import sys
from pathlib import Path
from typing import Any

from assistant.tools.base import Tool, ToolContext

ISA_FLAGS = ("avx2", "avx512f", "avx512_vnni", "avx_vnni", "avx512_bf16", "amx_tile", "amx_int8", "amx_bf16")
"""/proc/cpuinfo flags that decide how fast FP32/BF16/INT8 inference can be on CPU."""

ISA_NAMES = {"avx2": "AVX2", "avx512f": "AVX-512", "avx512_vnni": "AVX-512 VNNI", "avx_vnni": "AVX-VNNI",
             "avx512_bf16": "AVX-512 BF16", "amx_tile": "AMX", "amx_int8": "AMX-INT8", "amx_bf16": "AMX-BF16"}
"""The usual names of those flags (vendor-neutral: what the CPU reports, not a marketing name)."""

CPUINFO = Path("/proc/cpuinfo")


def system_info() -> dict[str, Any]:
    """CPU, ISA, memory, OS, Python, OpenVINO version and devices of this machine."""
    cpuinfo = _read_cpuinfo()
    flags = set(cpuinfo.get("flags", "").split())
    isa = {flag: flag in flags for flag in ISA_FLAGS}
    info: dict[str, Any] = {
        "cpu": {
            "name": _openvino_cpu_name() or cpuinfo.get("model name") or platform.processor() or "unknown",
            "model_name": cpuinfo.get("model name"),
            "vendor": cpuinfo.get("vendor_id"),
            **_cores(),
            "isa": isa,
        },
        "memory": _memory(),
        "os": _os_name(),
        "python": platform.python_version(),
        "python_executable": sys.executable,
        **_openvino(),
    }
    info["int8_note"] = int8_summary(isa)
    return info


def int8_summary(isa: dict[str, bool]) -> str:
    """One sentence on the INT8 (and BF16) acceleration these ISA flags give, naming the flags reported."""
    if isa.get("amx_int8") or isa.get("amx_tile"):
        tiles = ", ".join(ISA_NAMES[f] for f in ("amx_int8", "amx_bf16") if isa.get(f))
        vnni = " and AVX-512 VNNI" if isa.get("avx512_vnni") else " and AVX-VNNI" if isa.get("avx_vnni") else ""
        return (f"This CPU reports AMX matrix tiles ({tiles or 'AMX'}){vnni}: INT8 models get the largest "
                "speed-up over FP32 here; FP32 models may run in BF16 by default.")
    if isa.get("avx512_vnni") or isa.get("avx_vnni"):
        kind = "AVX-512 VNNI" if isa.get("avx512_vnni") else "AVX-VNNI"
        return f"This CPU reports {kind}: INT8 dot products are accelerated in hardware."
    if isa.get("avx512f") or isa.get("avx2"):
        kind = "AVX-512" if isa.get("avx512f") else "AVX2"
        return (f"This CPU reports {kind} but no VNNI or AMX: INT8 still usually beats FP32 through the reduced "
                "bit width (less memory traffic), but without dedicated INT8 instructions.")
    return "No AVX2/AVX-512/VNNI/AMX flags were found: expect little or no INT8 speed-up on this CPU."


def isa_names(isa: dict[str, bool]) -> list[str]:
    """The reported ISA features by their usual names ("AVX2", "AVX-512 VNNI", "AMX-BF16")."""
    return [ISA_NAMES.get(flag, flag) for flag, present in isa.items() if present]


def bf16_unit() -> str | None:
    """The unit this CPU runs bf16 inference on ("AMX", "AVX-512 BF16"), or None."""
    flags = set(_read_cpuinfo().get("flags", "").split())
    if "amx_bf16" in flags:
        return "AMX"
    return "AVX-512 BF16" if "avx512_bf16" in flags else None


def _read_cpuinfo() -> dict[str, str]:
    """The first processor block of /proc/cpuinfo as key -> value (empty off Linux)."""
    try:
        text = CPUINFO.read_text(errors="replace")
    except OSError:
        return {}
    fields: dict[str, str] = {}
    for line in text.split("\n\n", 1)[0].splitlines():
        key, sep, value = line.partition(":")
        if sep:
            fields.setdefault(key.strip(), value.strip())
    return fields


def _cores() -> dict[str, int | None]:
    import psutil

    return {"physical_cores": psutil.cpu_count(logical=False),
            "logical_cores": psutil.cpu_count(logical=True)}


def _memory() -> dict[str, Any]:
    """Total and available memory in GB (10^9 bytes) and the transparent huge page mode."""
    import psutil

    from assistant.hugepages import thp_mode

    memory = psutil.virtual_memory()
    return {"total_gb": round(memory.total / 1e9, 2), "available_gb": round(memory.available / 1e9, 2),
            "transparent_huge_pages": thp_mode()}


def _os_name() -> str:
    try:
        pretty = platform.freedesktop_os_release().get("PRETTY_NAME")
    except OSError:
        pretty = None
    return f"{pretty or platform.system()} ({platform.system()} {platform.release()}, {platform.machine()})"


def _openvino_cpu_name() -> str | None:
    try:
        import openvino as ov

        return str(ov.Core().get_property("CPU", "FULL_DEVICE_NAME"))
    except Exception:  # no CPU plugin or no openvino: fall back to /proc/cpuinfo
        return None


def _openvino() -> dict[str, Any]:
    try:
        import openvino as ov
    except ImportError:
        return {"openvino_version": None, "devices": [], "device_names": {}}
    core = ov.Core()
    devices: dict[str, str] = {}
    for device in core.available_devices:
        try:
            devices[device] = str(core.get_property(device, "FULL_DEVICE_NAME"))
        except Exception:  # a device without the property is still listed
            devices[device] = device
    return {"openvino_version": ov.get_version(), "devices": list(devices), "device_names": devices}


def _tool_function(args: dict[str, Any], ctx: ToolContext) -> dict[str, Any]:
    return system_info()


SYSTEM_INFO = Tool(
    name="system_info",
    description=("Report this machine's CPU (name, cores, AVX2/AVX-512/VNNI/AMX support), memory, OS, "
                 "OpenVINO version and available devices, to explain or compare benchmark results."),
    parameters={"type": "object", "properties": {}, "additionalProperties": False},
    function=_tool_function,
)
"""The system_info tool declaration (no arguments)."""
