"""Markdown as GitHub renders a comment (CommonMark, raw HTML kept, GFM tables), read back as an HTML tree."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from html.parser import HTMLParser

from markdown_it import MarkdownIt

# Elements HTML never closes; the parser must not wait for their end tag.
_VOID = frozenset({"br", "hr", "img", "input", "meta", "link", "wbr"})


@dataclass
class Node:
    tag: str
    attrs: dict[str, str | None] = field(default_factory=dict)
    children: list[Node | str] = field(default_factory=list)

    @property
    def text(self) -> str:
        return "".join(c if isinstance(c, str) else c.text for c in self.children)

    def elements(self) -> Iterator[Node]:
        """This node and every element below it, in document order."""
        yield self
        for child in self.children:
            if isinstance(child, Node):
                yield from child.elements()

    def find_all(self, tag: str) -> list[Node]:
        return [n for n in self.elements() if n.tag == tag and n is not self]

    def child_elements(self) -> list[Node]:
        return [c for c in self.children if isinstance(c, Node)]


class _TreeBuilder(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.root = Node("root")
        self.stack = [self.root]

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        node = Node(tag, dict(attrs))
        self.stack[-1].children.append(node)
        if tag not in _VOID:
            self.stack.append(node)

    def handle_endtag(self, tag: str) -> None:
        # Close up to the matching open element; a stray end tag closes nothing.
        for depth in range(len(self.stack) - 1, 0, -1):
            if self.stack[depth].tag == tag:
                del self.stack[depth:]
                return

    def handle_data(self, data: str) -> None:
        self.stack[-1].children.append(data)


def render(markdown: str) -> str:
    """The HTML GitHub would make of `markdown` (without its sanitiser and emoji)."""
    return MarkdownIt("commonmark", {"html": True}).enable(["table", "strikethrough"]).render(markdown)


def tree(markdown: str) -> Node:
    builder = _TreeBuilder()
    builder.feed(render(markdown))
    builder.close()
    assert builder.stack == [builder.root], f"unclosed elements: {[n.tag for n in builder.stack[1:]]}"
    return builder.root
