"""Shared fixtures: the project's knowledge, parsed once; settings that write only under tmp."""

from __future__ import annotations

from pathlib import Path

import pytest

from assistant.catalog import Catalog, catalog_from_documents
from assistant.config import PROJECT_ROOT, Settings
from assistant.knowledge import Document, load_documents

FAQ = PROJECT_ROOT / "knowledge" / "performance-benchmarks-faq.rst"


@pytest.fixture(scope="session")
def faq_documents() -> list[Document]:
    """The project's knowledge folder, parsed."""
    return load_documents([FAQ.parent])


@pytest.fixture(scope="session")
def catalog(faq_documents) -> Catalog:
    """The workload catalog parsed from the FAQ."""
    return catalog_from_documents(faq_documents)


@pytest.fixture
def tmp_settings(tmp_path: Path) -> Settings:
    """Settings whose caches, models and history live under tmp_path."""
    return Settings(cache_dir=tmp_path / "cache", models_dir=tmp_path / "models",
                    history_db=tmp_path / "cache" / "history.sqlite",
                    bench_allowed_dirs=(tmp_path / "user-models",), auto_pull=False)
