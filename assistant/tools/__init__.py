"""Tools the assistant can call: run_benchmark, benchmark_llm, benchmark_diffusion, system_info."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from assistant.config import Settings
from assistant.tools.base import Tool, ToolContext, ToolRegistry

__all__ = ["Tool", "ToolContext", "ToolRegistry", "default_registry"]


def default_registry(settings: Settings, *, get_llm: Callable[[], Any] | None = None) -> ToolRegistry:
    """The standard tools; benchmark_llm is included when its module is installed."""
    from assistant.tools.benchmark import make_run_benchmark_tool
    from assistant.tools.diffusion_bench import make_benchmark_diffusion_tool
    from assistant.tools.sysinfo import SYSTEM_INFO

    tools = [make_run_benchmark_tool(settings)]
    if (llm_tool := _benchmark_llm_tool(get_llm)) is not None:
        tools.append(llm_tool)
    tools.append(make_benchmark_diffusion_tool())
    tools.append(SYSTEM_INFO)
    return ToolRegistry(tools)


def _benchmark_llm_tool(get_llm: Callable[[], Any] | None) -> Tool | None:
    try:
        from assistant.tools.llm_bench import make_benchmark_llm_tool
    except ModuleNotFoundError as exc:
        if exc.name != "assistant.tools.llm_bench":
            raise  # the module exists but a dependency of it is missing: show that
        return None
    return make_benchmark_llm_tool(get_llm)
