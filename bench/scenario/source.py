"""YAML scenario source: safe loading that remembers where every key stands.

PyYAML's safe loader throws the line numbers away, so this composes the node
tree and converts it to plain Python while keeping a map from key path to line.
Errors then point at `file:line key.path` instead of a traceback.
"""

from __future__ import annotations

from collections.abc import Hashable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from bench.errors import ScenarioError

#: A key path: mapping keys (str) and list indexes (int) from the document root.
KeyPath = tuple[str | int, ...]


def format_path(path: KeyPath) -> str:
    """`("params", "batch", 0)` -> `params.batch[0]`."""
    out = ""
    for part in path:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += f".{part}" if out else part
    return out


@dataclass(frozen=True)
class Source:
    """A loaded YAML document: plain data plus the line of every key path."""

    file: str
    data: Any
    lines: dict[KeyPath, int] = field(default_factory=dict)

    def line_of(self, path: KeyPath) -> int | None:
        """Line of `path`, or of its nearest ancestor that has one."""
        while True:
            if path in self.lines:
                return self.lines[path]
            if not path:
                return None
            path = path[:-1]

    def error(self, path: KeyPath, message: str, *, hint: str | None = None) -> ScenarioError:
        """A ScenarioError located at `path` in this file."""
        return ScenarioError(
            message,
            file=self.file,
            line=self.line_of(path),
            key_path=format_path(path) or None,
            hint=hint,
        )


def load_text(text: str, file: str) -> Source:
    """Parse YAML `text` (named `file` in errors) into a Source."""
    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark is not None else None
        problem = exc.problem or exc.context or "invalid YAML"
        raise ScenarioError(
            f"YAML syntax error: {problem}",
            file=file,
            line=line,
            hint="check indentation, colons and quotes on that line",
        ) from None
    except yaml.YAMLError as exc:
        raise ScenarioError(f"YAML error: {exc}", file=file) from None
    if node is None:
        raise ScenarioError("the file is empty; expected a mapping of scenario keys", file=file)
    lines: dict[KeyPath, int] = {}
    data = _convert(node, (), lines, file)
    return Source(file=file, data=data, lines=lines)


def load_file(path: str | Path) -> Source:
    """Read and parse a YAML file; a missing or unreadable file is a ScenarioError."""
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ScenarioError("no such file", file=str(path)) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ScenarioError(f"cannot read file: {exc}", file=str(path)) from None
    return load_text(text, str(path))


_constructor = yaml.SafeLoader("")


def _convert(node: yaml.Node, path: KeyPath, lines: dict[KeyPath, int], file: str) -> Any:
    lines.setdefault(path, node.start_mark.line + 1)
    if isinstance(node, yaml.MappingNode):
        out: dict[Hashable, Any] = {}
        for key_node, value_node in node.value:
            if key_node.tag == "tag:yaml.org,2002:merge":
                raise ScenarioError(
                    "YAML merge keys (<<) are not supported in scenario files",
                    file=file,
                    line=key_node.start_mark.line + 1,
                )
            key = _constructor.construct_object(key_node, deep=True)
            if not isinstance(key, str):
                raise ScenarioError(
                    f"keys must be strings, got {key!r}",
                    file=file,
                    line=key_node.start_mark.line + 1,
                    key_path=format_path(path) or None,
                )
            if key in out:
                raise ScenarioError(
                    f"duplicate key {key!r}",
                    file=file,
                    line=key_node.start_mark.line + 1,
                    key_path=format_path((*path, key)),
                    hint="each key may appear once per mapping; remove one of them",
                )
            child = (*path, key)
            lines[child] = key_node.start_mark.line + 1
            out[key] = _convert(value_node, child, lines, file)
        return out
    if isinstance(node, yaml.SequenceNode):
        return [_convert(item, (*path, i), lines, file) for i, item in enumerate(node.value)]
    return _constructor.construct_object(node, deep=True)
