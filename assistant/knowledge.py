"""Parse the knowledge folder (.rst, .md) into retrievable chunks."""

from __future__ import annotations

import dataclasses
import logging
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from assistant.errors import KnowledgeError
from assistant.provenance import safe_url

log = logging.getLogger(__name__)


@dataclass(frozen=True, kw_only=True)
class Chunk:
    """One retrievable unit of text with its provenance."""

    id: str  # stable: "<file>#<slug>"
    title: str  # FAQ question, section title or catalog model name
    text: str  # the text as indexed and as shown to users
    source: str  # file name relative to its knowledge folder
    kind: str  # "faq" | "table" | "row" | "section"
    meta: dict[str, Any] = field(default_factory=dict, compare=False)
    origin: str = "faq"  # "faq" | "catalog" | "added" (assistant.provenance): the FAQ outranks added files


@dataclass(frozen=True, kw_only=True)
class Cell:
    """One table cell: its plain text and the first link target in it."""

    text: str
    url: str | None = None


@dataclass(frozen=True, kw_only=True)
class Table:
    """A table found in a document, with the section or question it belongs to."""

    header: tuple[str, ...]
    rows: tuple[tuple[Cell, ...], ...]
    source: str
    context: str


@dataclass(frozen=True, kw_only=True)
class Document:
    """A parsed knowledge file: its chunks and tables."""

    path: Path
    title: str
    chunks: tuple[Chunk, ...]
    tables: tuple[Table, ...]
    origin: str = "faq"  # see assistant.provenance; only faq and catalog documents feed the catalog
    flagged: int = 0  # passages left out because they address the assistant


SUFFIXES = (".rst", ".md")


def slugify(text: str, max_len: int = 48) -> str:
    """A short lowercase id fragment from a title."""
    slug = re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")
    return slug[:max_len].rstrip("-") or "untitled"


def knowledge_files(dirs: Sequence[Path]) -> list[Path]:
    """Every .rst/.md file in the given folders (or the files themselves), sorted."""
    files: list[Path] = []
    for entry in dirs:
        entry = Path(entry)
        if entry.is_file():
            files.append(entry)
        elif entry.is_dir():
            files.extend(p for p in sorted(entry.rglob("*")) if p.suffix.lower() in SUFFIXES and p.is_file())
        else:
            raise KnowledgeError(
                f"knowledge folder not found: {entry}",
                hint="Pass an existing folder with --knowledge DIR (it should hold .rst or .md files).",
            )
    if not files:
        raise KnowledgeError(
            f"no .rst or .md files in {', '.join(str(d) for d in dirs)}",
            hint="Put the FAQ (performance-benchmarks-faq.rst) or other documents there.",
        )
    return files


def read_text(path: Path) -> str:
    """Read a knowledge file as UTF-8, with a clear error when it cannot be read."""
    try:
        return path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise KnowledgeError(
            f"cannot read knowledge file {path}: {exc.__class__.__name__}: {exc}",
            hint="Check its permissions and that it is UTF-8 text, or remove it from the knowledge folder.",
        ) from exc


def parse_file(path: Path, *, source: str | None = None) -> Document:
    """Parse one .rst or .md file; the document and its chunks know their origin (the FAQ, a declared
    catalog, or an added file), and an added file loses what addresses the assistant."""
    from assistant.provenance import document_origin, vetted

    text = read_text(path)
    source = source or path.name
    if path.suffix.lower() == ".md":
        from assistant.markdown_parser import parse_markdown

        document = parse_markdown(text, path=path, source=source)
    else:
        from assistant.rst_parser import parse_rst

        document = parse_rst(text, path=path, source=source)
    origin = document_origin(path)
    chunks, flagged = vetted(document.chunks, origin)
    if flagged:
        log.warning("knowledge file %s: %d passage(s) that address the assistant (instructions, keys, "
                    "secrets) were left out of the index", path.name, flagged)
    return dataclasses.replace(document, chunks=tuple(chunks), origin=origin, flagged=flagged)


def load_documents(dirs: Sequence[Path]) -> list[Document]:
    """Parse every knowledge file in the given folders."""
    documents = []
    for path in knowledge_files(dirs):
        base = next((Path(d) for d in dirs if Path(d).is_dir() and Path(d) in path.parents), path.parent)
        documents.append(parse_file(path, source=str(path.relative_to(base))))
    return documents


def load_knowledge(dirs: Sequence[Path]) -> list[Chunk]:
    """All chunks of all knowledge files, in document order."""
    return [chunk for doc in load_documents(dirs) for chunk in doc.chunks]


def row_chunk_ids(table: Table, index: int) -> list[str]:
    """The chunk id of each row of the document's table number `index`; a repeated name gets -2, -3, ..."""
    stem = f"{table.source}#table-{index}"
    seen: set[str] = set()
    return [_unique_id(f"{stem}-{slugify(row[0].text if row else '')}", seen) for row in table.rows]


def _unique_id(base: str, taken: set[str]) -> str:
    """`base`, or `base`-2, -3, ... if taken; the result is added to `taken`."""
    chunk_id, n = base, 2
    while chunk_id in taken:
        chunk_id, n = f"{base}-{n}", n + 1
    taken.add(chunk_id)
    return chunk_id


def document_chunks(sections: Sequence[Chunk], tables: Sequence[Table], *, doc_title: str) -> tuple[Chunk, ...]:
    """Section/FAQ chunks, then each table's chunks; ids unique (a section id that a table or row
    already uses, e.g. a section titled "Table 0", gets -2, -3, ...; table and row ids never change)."""
    table_part = [chunk for index, table in enumerate(tables)
                  for chunk in table_chunks(table, doc_title=doc_title, index=index)]
    taken = {chunk.id for chunk in table_part}
    renamed = []
    for chunk in sections:
        chunk_id = _unique_id(chunk.id, taken)
        renamed.append(chunk if chunk_id == chunk.id else dataclasses.replace(chunk, id=chunk_id))
    return (*renamed, *table_part)


def table_chunks(table: Table, *, doc_title: str, index: int) -> list[Chunk]:
    """The table as one chunk, plus one chunk per row."""
    stem = f"{table.source}#table-{index}"
    lines = [" | ".join(table.header)]
    lines += [" | ".join(cell.text for cell in row) for row in table.rows]
    whole = Chunk(
        id=stem,
        title=f"{table.context} (table)" if table.context else f"{doc_title} (table)",
        text=f"{table.context}\n" + "\n".join(lines) if table.context else "\n".join(lines),
        source=table.source,
        kind="table",
        meta={"rows": len(table.rows)},
    )
    chunks = [whole]
    for row, row_id in zip(table.rows, row_chunk_ids(table, index), strict=True):
        pairs = [f"{name}: {cell.text}" for name, cell in zip(table.header, row, strict=False)]
        url = next((safe_url(cell.url) for cell in row if safe_url(cell.url)), None)
        if url:
            pairs.append(f"Link: {url}")
        name = row[0].text if row else ""
        chunks.append(
            Chunk(
                id=row_id,
                title=name,
                text=". ".join(pairs) + ".",
                source=table.source,
                kind="row",
                meta={"table": stem, "cells": {h: c.text for h, c in zip(table.header, row, strict=False)},
                      "url": url},
            )
        )
    return chunks
