"""Frozen settings built at the edges (flags, `OVPERF_*` environment variables).

The core receives a `Settings` object and never reads `os.environ` itself.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from assistant.errors import ConfigError

PROJECT_ROOT = Path(__file__).resolve().parent.parent


@dataclass(frozen=True, kw_only=True)
class Settings:
    """Everything configurable about one assistant process."""

    knowledge_dirs: tuple[Path, ...] = (PROJECT_ROOT / "knowledge",)
    models_dir: Path = PROJECT_ROOT / "models"
    cache_dir: Path = PROJECT_ROOT / ".cache"
    model: str | None = None  # path to a GGUF/IR dir, or a Hugging Face id; None = default
    device: str = "CPU"
    llm_endpoint: str | None = None  # OpenAI-compatible server that does the generation
    max_new_tokens: int = 96
    top_k: int = 3
    max_question_chars: int = 4000
    tools_mode: str = "plan"  # "run" | "plan" | "off"
    bench_allowed_dirs: tuple[Path, ...] = (PROJECT_ROOT / "models" / "user",)
    bench_max_seconds: int = 120
    tool_timeout_s: int = 900
    history_db: Path = PROJECT_ROOT / ".cache" / "history.sqlite"
    auto_pull: bool = True
    llm_summary: bool = True  # the LLM adds a sentence in its own words under an FAQ quote (off: quotes only)
    huge_pages: bool = True  # back the loaded model with transparent huge pages (assistant/hugepages.py)
    prompt_lookup: bool = True  # prompt-lookup decoding of GGUF models (faster for few users, see llm.py)
    fit_memory_gb: float | None = None  # cap on the memory the fit check counts as available (None: all)
    fit_disk_gb: float | None = None  # cap on the free disk the fit check counts (None: all)

    def __post_init__(self) -> None:
        if self.tools_mode not in {"run", "plan", "off"}:
            raise ConfigError(
                f"tools mode must be run, plan or off, not {self.tools_mode!r}",
                hint="Use --tools run|plan|off or OVPERF_TOOLS.",
            )
        if not 1 <= self.top_k <= 20:
            raise ConfigError(f"top_k must be between 1 and 20, not {self.top_k}")
        if not 1 <= self.max_new_tokens <= 4096:
            raise ConfigError(f"max_new_tokens must be between 1 and 4096, not {self.max_new_tokens}")

    @property
    def index_dir(self) -> Path:
        """Where the retrieval index is persisted."""
        return self.cache_dir / "index"

    @property
    def embedder_cache_dir(self) -> Path:
        """Where the exported OpenVINO embedding model is cached."""
        return self.cache_dir / "embedder"

    @property
    def ov_cache_dir(self) -> Path:
        """OpenVINO compiled-model cache (CACHE_DIR)."""
        return self.cache_dir / "ov"

    def replace(self, **changes: object) -> Settings:
        """A copy with some fields changed (None values are ignored)."""
        return dataclasses.replace(self, **{k: v for k, v in changes.items() if v is not None})

    @classmethod
    def from_env(cls, environ: Mapping[str, str], **overrides: object) -> Settings:
        """Build settings from `OVPERF_*` variables; explicit overrides win."""
        values: dict[str, object] = {}
        if home := environ.get("OVPERF_HOME"):
            home_path = Path(home)
            values.update(cache_dir=home_path / ".cache", history_db=home_path / ".cache" / "history.sqlite")
        if cache := environ.get("OVPERF_CACHE_DIR"):
            values.update(cache_dir=Path(cache), history_db=Path(cache) / "history.sqlite")
        if models := environ.get("OVPERF_MODELS_DIR"):
            values["models_dir"] = Path(models)
        if knowledge := environ.get("OVPERF_KNOWLEDGE"):
            values["knowledge_dirs"] = tuple(Path(p) for p in knowledge.split(":") if p)
        for env_name, key in (("OVPERF_MODEL", "model"), ("OVPERF_DEVICE", "device"),
                              ("OVPERF_LLM_ENDPOINT", "llm_endpoint"), ("OVPERF_TOOLS", "tools_mode")):
            if environ.get(env_name):
                values[key] = environ[env_name]
        for env_name, key, kind, what in (("OVPERF_MAX_NEW_TOKENS", "max_new_tokens", int, "an integer"),
                                          ("OVPERF_TOP_K", "top_k", int, "an integer"),
                                          ("OVPERF_FIT_MEMORY_GB", "fit_memory_gb", float, "a number of GB"),
                                          ("OVPERF_FIT_DISK_GB", "fit_disk_gb", float, "a number of GB")):
            if env_name in environ:
                try:
                    values[key] = kind(environ[env_name])
                except ValueError as exc:
                    raise ConfigError(f"{env_name} must be {what}, not {environ[env_name]!r}") from exc
        if "OVPERF_LLM_SUMMARY" in environ:
            values["llm_summary"] = parse_flag("OVPERF_LLM_SUMMARY", environ["OVPERF_LLM_SUMMARY"])
        if "OVPERF_HUGE_PAGES" in environ:
            values["huge_pages"] = parse_flag("OVPERF_HUGE_PAGES", environ["OVPERF_HUGE_PAGES"])
        if "OVPERF_PROMPT_LOOKUP" in environ:
            values["prompt_lookup"] = parse_flag("OVPERF_PROMPT_LOOKUP", environ["OVPERF_PROMPT_LOOKUP"])
        if bench_dirs := environ.get("OVPERF_BENCH_DIRS"):
            values["bench_allowed_dirs"] = tuple(Path(p) for p in bench_dirs.split(":") if p)
        values.update({k: v for k, v in overrides.items() if v is not None})
        return cls(**values)


def parse_flag(name: str, text: str) -> bool:
    """An on/off setting: 1/true/yes/on or 0/false/no/off (any case); ConfigError otherwise."""
    value = text.strip().lower()
    if value in {"1", "true", "yes", "on"}:
        return True
    if value in {"0", "false", "no", "off", ""}:
        return False
    raise ConfigError(f"{name} must be on or off, not {text!r}", hint=f"Set {name}=1 or {name}=0.")
