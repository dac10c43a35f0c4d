"""reStructuredText (with the Sphinx directives the OpenVINO docs use) → chunks and tables.

docutils parses the text; Sphinx-only directives and roles are registered as plain
containers and text so that their content is kept, not dropped as errors. Raw HTML and
file inclusion are disabled: documents are data.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import ClassVar

import docutils.core
from docutils import nodes
from docutils.parsers.rst import Directive, directives, roles

from assistant.knowledge import Cell, Chunk, Document, Table, document_chunks, slugify
from assistant.provenance import safe_url

_TARGET = re.compile(r"^(?P<text>.*?)\s*<(?P<target>[^<>]+)>$", re.S)


class dropdown(nodes.General, nodes.Element):
    """A collapsible question (sphinx-design `dropdown`): title + body."""


class DropdownDirective(Directive):
    """`.. dropdown:: Title` with an indented body."""

    has_content = True
    optional_arguments = 1
    final_argument_whitespace = True
    option_spec: ClassVar[dict] = {"open": directives.flag, "animate": directives.unchanged,
                   "color": directives.unchanged, "icon": directives.unchanged,
                   "name": directives.unchanged, "class-container": directives.unchanged}

    def run(self) -> list[nodes.Node]:
        node = dropdown(title=" ".join(self.arguments).strip())
        self.state.nested_parse(self.content, self.content_offset, node)
        return [node]


class ContainerDirective(Directive):
    """Any other Sphinx container directive (tab-item, card, ...): keep its content."""

    has_content = True
    optional_arguments = 1
    final_argument_whitespace = True
    option_spec = None  # accept any options

    def run(self) -> list[nodes.Node]:
        node = nodes.container()
        if self.arguments:
            node += nodes.paragraph(text=" ".join(self.arguments))
        self.state.nested_parse(self.content, self.content_offset, node)
        return [node]


class CodeDirective(Directive):
    """`code-block` and friends: a literal block."""

    has_content = True
    optional_arguments = 1
    option_spec = None

    def run(self) -> list[nodes.Node]:
        text = "\n".join(self.content)
        return [nodes.literal_block(text, text)]


class SkipDirective(Directive):
    """Directives with no text worth indexing (toctree, raw, meta, image)."""

    has_content = True
    optional_arguments = 10
    final_argument_whitespace = True
    option_spec = None

    def run(self) -> list[nodes.Node]:
        return []


def _text_role(name, rawtext, text, lineno, inliner, options=None, content=None):
    """`:doc:`Title <path>`` and similar roles → a reference whose text is the title."""
    match = _TARGET.match(text)
    if match:
        return [nodes.reference(rawtext, match["text"], refuri=match["target"])], []
    return [nodes.literal(rawtext, text)], []


_REGISTERED = False


def _register() -> None:
    global _REGISTERED
    if _REGISTERED:
        return
    directives.register_directive("dropdown", DropdownDirective)
    for name in ("tab-set", "tab-item", "tab", "grid", "grid-item", "grid-item-card", "card",
                 "details", "only", "versionadded", "versionchanged", "deprecated", "div"):
        directives.register_directive(name, ContainerDirective)
    for name in ("code-block", "sourcecode", "code", "doxygensnippet"):
        directives.register_directive(name, CodeDirective)
    for name in ("toctree", "raw", "meta", "image", "figure", "include", "literalinclude",
                 "autosummary", "automodule", "autoclass", "autofunction", "iframe", "video"):
        directives.register_directive(name, SkipDirective)
    for name in ("doc", "ref", "term", "abbr", "download", "class", "func", "meth", "mod",
                 "attr", "py:class", "py:func", "guilabel", "menuselection", "file", "command",
                 "program", "option", "envvar", "kbd", "samp", "numref"):
        roles.register_local_role(name, _text_role)
    _REGISTERED = True


_SETTINGS = {
    "report_level": 5,
    "halt_level": 5,
    "warning_stream": False,
    "file_insertion_enabled": False,
    "raw_enabled": False,
    "input_encoding": "unicode",
    "syntax_highlight": "none",
    "doctitle_xform": False,
}


def parse_rst(text: str, *, path: Path, source: str) -> Document:
    """Parse reStructuredText into FAQ/section chunks and tables."""
    _register()
    tree = docutils.core.publish_doctree(text, source_path=str(path), settings_overrides=_SETTINGS)
    doc_title = _document_title(tree) or path.stem
    walker = _Walker(source=source, doc_title=doc_title)
    walker.visit(tree, section_title=doc_title)
    chunks = document_chunks(walker.chunks, walker.tables, doc_title=doc_title)
    return Document(path=path, title=doc_title, chunks=chunks, tables=tuple(walker.tables))


def _document_title(tree: nodes.document) -> str | None:
    title = tree.next_node(nodes.title)
    return _clean(title.astext()) if title is not None else None


def _clean(text: str) -> str:
    return re.sub(r"[ \t\r\f\v]*\n[ \t\r\f\v]*", " ", text).strip()


class _Walker:
    """Collects chunks from sections and dropdowns, and tables from anywhere."""

    def __init__(self, *, source: str, doc_title: str) -> None:
        self.source = source
        self.doc_title = doc_title
        self.chunks: list[Chunk] = []
        self.tables: list[Table] = []
        self._ids: set[str] = set()

    def visit(self, node: nodes.Element, *, section_title: str) -> None:
        loose: list[str] = []
        for child in node.children:
            if isinstance(child, nodes.section):
                self.visit(child, section_title=_clean(child[0].astext()) if child.children else section_title)
            elif isinstance(child, dropdown):
                self._add_dropdown(child)
            elif isinstance(child, nodes.container) and child.next_node(dropdown) is not None:
                self.visit(child, section_title=section_title)
            elif isinstance(child, nodes.table):
                self.tables.append(self._table(child, context=section_title))
            else:
                loose.extend(self._paragraphs(child))
        if loose:
            self._add(kind="section", title=section_title, body=loose)

    def _add_dropdown(self, node: dropdown) -> None:
        title = _clean(node["title"])
        body: list[str] = []
        for child in node.children:
            if isinstance(child, nodes.table):
                self.tables.append(self._table(child, context=title))
            else:
                body.extend(self._paragraphs(child))
        self._add(kind="faq", title=title, body=body, links=_web_links(node))

    def _paragraphs(self, node: nodes.Node) -> list[str]:
        if isinstance(node, nodes.title | nodes.system_message | nodes.comment | nodes.target
                      | nodes.substitution_definition):
            return []
        if isinstance(node, nodes.table):
            self.tables.append(self._table(node, context=""))
            return []
        if isinstance(node, nodes.literal_block):
            return [node.astext().strip()]
        if isinstance(node, nodes.paragraph | nodes.Text | nodes.term):
            text = _clean(_text(node))
            return [text] if text else []
        if isinstance(node, nodes.list_item):
            inner = [p for child in node.children for p in self._paragraphs(child)]
            return ["- " + " ".join(inner)] if inner else []
        if isinstance(node, nodes.Element):
            return [p for child in node.children for p in self._paragraphs(child)]
        return []

    def _table(self, node: nodes.table, *, context: str) -> Table:
        header: tuple[str, ...] = ()
        rows: list[tuple[Cell, ...]] = []
        thead = node.next_node(nodes.thead)
        if thead is not None:
            first = thead.next_node(nodes.row)
            header = tuple(_clean(_text(entry)) for entry in first.children)
        tbody = node.next_node(nodes.tbody)
        for row in tbody.children if tbody is not None else []:
            cells = tuple(
                Cell(text=_clean(_text(entry)), url=_first_url(entry)) for entry in row.children
            )
            rows.append(cells)
        if not header and rows:
            header, rows = tuple(c.text for c in rows[0]), rows[1:]
        return Table(header=header, rows=tuple(rows), source=self.source, context=context)

    def _add(self, *, kind: str, title: str, body: list[str], links: dict[str, str] | None = None) -> None:
        text = "\n".join([title, *body]) if kind == "faq" else "\n".join(body)
        base = f"{self.source}#{slugify(title)}"
        chunk_id, n = base, 2
        while chunk_id in self._ids:
            chunk_id, n = f"{base}-{n}", n + 1
        self._ids.add(chunk_id)
        self.chunks.append(Chunk(id=chunk_id, title=title, text=text, source=self.source, kind=kind,
                                 meta={"links": links} if links else {}))


def _text(node: nodes.Node) -> str:
    """Plain text of a node, without system messages."""
    if isinstance(node, nodes.system_message):
        return ""
    if isinstance(node, nodes.Text):
        return str(node)
    if isinstance(node, nodes.Element):
        return "".join(_text(child) for child in node.children)
    return ""


def _web_links(node: nodes.Node) -> dict[str, str]:
    """Link text → web address of the node's http(s) links (documentation cross-references are skipped)."""
    links: dict[str, str] = {}
    for ref in node.findall(nodes.reference):
        url = ref.get("refuri", "")
        if safe_url(url):
            links.setdefault(_clean(ref.astext()), url)
    return links


def _first_url(node: nodes.Node) -> str | None:
    ref = node.next_node(nodes.reference)
    return safe_url(ref.get("refuri")) if ref is not None else None
