"""Markdown → chunks (one per heading section) and tables, with markdown-it-py."""

from __future__ import annotations

from pathlib import Path

from markdown_it import MarkdownIt
from markdown_it.token import Token

from assistant.knowledge import Cell, Chunk, Document, Table, document_chunks, slugify
from assistant.provenance import safe_url


def parse_markdown(text: str, *, path: Path, source: str) -> Document:
    """Parse Markdown: each heading starts a section chunk; tables become Table records."""
    tokens = MarkdownIt("commonmark").enable("table").parse(text)
    doc_title = path.stem
    sections: list[tuple[str, list[str]]] = []
    tables: list[Table] = []
    title, body = doc_title, []
    i = 0
    while i < len(tokens):
        token = tokens[i]
        if token.type == "heading_open":
            if body:
                sections.append((title, body))
            title, body = _inline_text(tokens[i + 1]), []
            if token.tag == "h1" and not sections and not tables:
                doc_title = title
            i += 3
            continue
        if token.type == "table_open":
            end = next(j for j in range(i, len(tokens)) if tokens[j].type == "table_close")
            tables.append(_table(tokens[i:end], source=source, context=title))
            i = end + 1
            continue
        if token.type == "inline":
            body.append(_inline_text(token))
        elif token.type in {"fence", "code_block"}:
            body.append(token.content.strip())
        i += 1
    if body:
        sections.append((title, body))
    chunks: list[Chunk] = []
    seen: set[str] = set()
    for section_title, paragraphs in sections:
        chunk_id = f"{source}#{slugify(section_title)}"
        n = 2
        while chunk_id in seen:
            chunk_id, n = f"{source}#{slugify(section_title)}-{n}", n + 1
        seen.add(chunk_id)
        text = "\n".join(p for p in paragraphs if p)
        if text:
            chunks.append(Chunk(id=chunk_id, title=section_title, text=text, source=source, kind="section"))
    return Document(path=path, title=doc_title, chunks=document_chunks(chunks, tables, doc_title=doc_title),
                    tables=tuple(tables))


def _inline_text(token: Token) -> str:
    parts = []
    for child in token.children or []:
        if child.type in {"text", "code_inline"}:
            parts.append(child.content)
        elif child.type in {"softbreak", "hardbreak"}:
            parts.append(" ")
    return " ".join("".join(parts).split())


def _table(tokens: list[Token], *, source: str, context: str) -> Table:
    header: list[str] = []
    rows: list[tuple[Cell, ...]] = []
    current: list[Cell] = []
    in_head = False
    for token in tokens:
        if token.type == "thead_open":
            in_head = True
        elif token.type == "thead_close":
            in_head = False
        elif token.type == "tr_close" and not in_head:
            rows.append(tuple(current))
            current = []
        elif token.type == "inline":
            url = next((c.attrGet("href") for c in token.children or [] if c.type == "link_open"), None)
            if in_head:
                header.append(_inline_text(token))
            else:
                current.append(Cell(text=_inline_text(token), url=safe_url(str(url)) if url else None))
    return Table(header=tuple(header), rows=tuple(rows), source=source, context=context)
