"""YAML from repositories, read within a budget: nesting depth and alias expansion are bounded (pure).

PyYAML shares an aliased node instead of copying it, so a few hundred bytes of aliases load
quickly and then explode in whatever walks the result (a schema validator, an error message).
Deep nesting, from brackets or from chains of aliases, ends in a RecursionError. The loader
counts both on the node graph before anything is built from it.
"""

from __future__ import annotations

import yaml
from yaml.composer import ComposerError
from yaml.nodes import MappingNode, Node, SequenceNode

MAX_DEPTH = 32  # levels of nesting, aliases followed; real configuration files use four or five
MAX_NODES = 5_000  # values once every alias is expanded


class BudgetLoader(yaml.SafeLoader):
    """A SafeLoader that refuses documents nested deeper than MAX_DEPTH or expanding past MAX_NODES."""

    def __init__(self, stream: str) -> None:
        super().__init__(stream)
        self._depth = 0
        self._nodes = 0

    def compose_node(self, parent: Node | None, index: object) -> Node:
        self._depth += 1
        self._nodes += 1  # counted as they are read, so a long document stops early, not after parsing
        try:
            if self._depth > MAX_DEPTH:
                raise ComposerError(None, None, f"nested deeper than {MAX_DEPTH} levels",
                                    self.peek_event().start_mark)
            if self._nodes > MAX_NODES:
                raise ComposerError(None, None, f"holds more than {MAX_NODES} values", self.peek_event().start_mark)
            return super().compose_node(parent, index)
        finally:
            self._depth -= 1

    def compose_document(self) -> Node:
        node = super().compose_document()
        check_budget(node)
        return node


def _children(node: Node) -> list[Node]:
    if isinstance(node, SequenceNode):
        return list(node.value)
    if isinstance(node, MappingNode):
        return [part for pair in node.value for part in pair]
    return []


def check_budget(root: Node | None) -> None:
    """Raise a ComposerError when the node graph, aliases expanded, is too deep or too large (or cyclic).

    Iterative and linear in the number of distinct nodes: each node's expanded size and depth are
    computed once and shared by every alias that points to it.
    """
    if root is None:
        return
    done: dict[int, tuple[int, int]] = {}  # id(node) -> (expanded size, depth)
    active: set[int] = set()
    stack: list[tuple[Node, bool]] = [(root, False)]
    while stack:
        node, expanded = stack.pop()
        key = id(node)
        if expanded:
            sizes = [done[id(child)] for child in _children(node)]
            size = 1 + sum(s for s, _ in sizes)
            depth = 1 + max((d for _, d in sizes), default=0)
            active.discard(key)
            if size > MAX_NODES:
                raise ComposerError(None, None, f"aliases expand to more than {MAX_NODES} values", node.start_mark)
            if depth > MAX_DEPTH:
                raise ComposerError(None, None, f"aliases nest deeper than {MAX_DEPTH} levels", node.start_mark)
            done[key] = (size, depth)
            continue
        if key in done:
            continue
        if key in active:
            raise ComposerError(None, None, "an alias refers to the value that contains it", node.start_mark)
        active.add(key)
        stack.append((node, True))
        stack.extend((child, False) for child in _children(node) if id(child) not in done)
