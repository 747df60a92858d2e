"""YAML scenario source: safe, bounded loading that remembers where every key stands.

PyYAML's safe loader throws the line numbers away, so this composes the node
tree and converts it to plain Python while keeping a map from key path to line.
Errors then point at `file:line key.path` instead of a traceback.

A scenario file is untrusted input (it may come with a repository that CI
collects), so loading is bounded in size, nesting and the values aliases expand
to: a hostile file fails in well under a second with a located ScenarioError,
never a traceback or gigabytes of memory.
"""

from __future__ import annotations

import re
from collections.abc import Hashable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from osbench.errors import ScenarioError

#: A key path: mapping keys (str) and list indexes (int) from the document root.
KeyPath = tuple[str | int, ...]

#: Real scenario files are a few KB; the largest part, user_data, is capped by
#: Nova at 64 KiB base64 (48 KiB of text). 256 KiB parses in about 0.1 s.
MAX_FILE_BYTES = 256 * 1024
#: Real files nest 4-5 levels (`sweep.zip.flavor[1]`); 32 leaves room and keeps
#: the recursive composer and validator far below Python's recursion limit.
MAX_DEPTH = 32
#: Values (scalars, lists, mappings), counting every copy an alias makes. Real
#: files have under 200; 20,000 compose and validate in about half a second on a
#: busy 2-core machine, while a 300-byte alias bomb would expand to 4.8 million.
MAX_NODES = 20_000
#: Integers beyond 64 bits cannot mean anything in a scenario (and past 4,300
#: digits Python refuses to convert them); the schema bounds each field further.
MAX_INTEGER = 2**63 - 1
#: Longest integer literal read at all: 64 bits in binary with `_` separators.
_MAX_INTEGER_CHARS = 100
#: How much of a bad value an error message shows; the rest is counted, not echoed.
MAX_SHOWN_CHARS = 80
#: Longest message, and longest hint; the longest real one is a hint listing a
#: kind's 23 keys, about 350 characters.
MAX_MESSAGE_CHARS = 400
#: Longest key path shown (32 levels of odd keys could make 2,600 characters).
MAX_KEY_PATH_CHARS = 160

_PLAIN_KEY = re.compile(r"[A-Za-z_][A-Za-z0-9_-]{0,79}")

#: Tags a scenario value may carry: plain YAML data. Anything else (`!!python/...`,
#: `!!binary`, `!!set`, local `!tags`) is refused, never constructed.
_ALLOWED_TAGS = frozenset(
    f"tag:yaml.org,2002:{name}"
    for name in ("null", "bool", "int", "float", "str", "timestamp", "seq", "map")
)
_INT_TAG = "tag:yaml.org,2002:int"
_STR_TAG = "tag:yaml.org,2002:str"
_MERGE_TAG = "tag:yaml.org,2002:merge"


def short_repr(value: Any) -> str:
    """`repr(value)` for an error message: at most ~80 characters, the length said."""
    text = repr(value)
    if len(text) <= MAX_SHOWN_CHARS:
        return text
    size = f"{len(value)} characters" if isinstance(value, str) else f"{len(text)} characters"
    return f"{text[:MAX_SHOWN_CHARS]}... ({size})"


def printable(text: str, limit: int = MAX_MESSAGE_CHARS) -> str:
    """`text` safe for one terminal line: control characters escaped, cut at `limit`."""
    cut = "".join(
        c if c.isprintable() else c.encode("unicode_escape").decode("ascii")
        for c in text[:limit]
    )
    return f"{cut}... ({len(text)} characters)" if len(text) > limit else cut


def format_path(path: KeyPath) -> str:
    """`("params", "batch", 0)` -> `params.batch[0]`; odd keys as short reprs."""
    out = ""
    for part in path:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            name = part if _PLAIN_KEY.fullmatch(part) else short_repr(part)
            out += f".{name}" if out else name
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
        """A ScenarioError located at `path` in this file, on one bounded line."""
        return _error(self.file, self.line_of(path), path, message, hint=hint)


def _error(file: str, line: int | None, path: KeyPath, message: str, *,
           hint: str | None = None) -> ScenarioError:
    return ScenarioError(
        printable(message),
        file=file,
        line=line,
        key_path=printable(format_path(path), MAX_KEY_PATH_CHARS) or None,
        hint=printable(hint) if hint is not None else None,
    )


def load_text(text: str, file: str) -> Source:
    """Parse YAML `text` (named `file` in errors) into a Source."""
    if len(text) > MAX_FILE_BYTES or len(text.encode("utf-8", "surrogatepass")) > MAX_FILE_BYTES:
        raise _too_big(file)
    loader: _BoundedLoader | None = None
    try:
        loader = _BoundedLoader(text, file)
        node = loader.get_single_node()
        if node is None:
            raise ScenarioError("the file is empty; expected a mapping of scenario keys",
                                file=file)
        lines: dict[KeyPath, int] = {}
        data = _Converter(loader, file, lines).convert(node, ())
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark is not None else None
        problem = exc.problem or exc.context or "invalid YAML"
        raise _error(file, line, (), f"YAML syntax error: {problem}",
                     hint="check indentation, colons and quotes on that line") from None
    except yaml.reader.ReaderError as exc:  # a control character, say
        line = text.count("\n", 0, exc.position) + 1
        raise _error(file, line, (), f"character {chr(exc.character)!r} is not allowed in "
                     "YAML", hint="write it as an escape inside double quotes") from None
    except yaml.YAMLError as exc:
        raise _error(file, None, (), f"YAML error: {exc}") from None
    except (ValueError, OverflowError) as exc:
        # PyYAML's scanner on an escape past U+10FFFF: chr() fails, with
        # OverflowError once the number is past a C int (found by the fuzz).
        line = loader.line + 1 if loader is not None else None
        raise _error(file, line, (), f"YAML syntax error: {exc}",
                     hint="check the escapes in quoted strings on that line") from None
    return Source(file=file, data=data, lines=lines)


def load_file(path: str | Path) -> Source:
    """Read and parse a YAML file; a missing, unreadable or oversized file is a
    ScenarioError."""
    try:
        with Path(path).open("rb") as f:
            raw = f.read(MAX_FILE_BYTES + 1)  # never more: the file may be huge
    except FileNotFoundError:
        raise ScenarioError("no such file", file=str(path)) from None
    except OSError as exc:
        raise ScenarioError(f"cannot read file: {exc}", file=str(path)) from None
    if len(raw) > MAX_FILE_BYTES:
        raise _too_big(str(path))
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ScenarioError(f"cannot read file: {exc}", file=str(path)) from None
    return load_text(text, str(path))


def _too_big(file: str) -> ScenarioError:
    return ScenarioError(f"the file is larger than {MAX_FILE_BYTES} bytes, the limit for "
                         "scenario files", file=file,
                         hint="move large data (user_data) out of the scenario or shorten it")


class _BoundedLoader(yaml.SafeLoader):
    """PyYAML's safe composer with a bound on nesting depth and node count.

    Composing shares an aliased node instead of copying it, so this bounds the
    file as written; `_Converter` bounds what aliases expand to.
    """

    def __init__(self, text: str, file: str) -> None:
        super().__init__(text)
        self.file = file
        self._path: list[str | int] = []
        self._nodes = 0

    def compose_node(self, parent: yaml.Node | None, index: Any) -> yaml.Node | None:
        # `index` is the key node for a mapping value, the position in a list, and
        # None for the root and for a mapping key (which adds nothing to the path).
        part = index.value if isinstance(index, yaml.ScalarNode) else index
        pushed = part is not None and isinstance(part, str | int)
        if pushed:
            self._path.append(part)
        try:
            self._nodes += 1
            line = self.peek_event().start_mark.line + 1  # type: ignore[no-untyped-call]
            if self._nodes > MAX_NODES:
                raise _error(self.file, line, tuple(self._path),
                             f"the file has more than {MAX_NODES} values, the limit for "
                             "scenario files")
            if len(self._path) > MAX_DEPTH:
                raise _error(self.file, line, tuple(self._path[:MAX_DEPTH]),
                             f"nested more than {MAX_DEPTH} levels deep, the limit for "
                             "scenario files")
            return super().compose_node(parent, index)
        finally:
            if pushed:
                self._path.pop()


class _Converter:
    """Node tree -> plain data, counting every value an alias copies."""

    def __init__(self, loader: _BoundedLoader, file: str, lines: dict[KeyPath, int]) -> None:
        self.loader = loader
        self.file = file
        self.lines = lines
        self.nodes = 0
        self.open: set[int] = set()  # ids of the nodes being converted: the current branch

    def fail(self, node: yaml.Node, path: KeyPath, message: str, *,
             hint: str | None = None) -> ScenarioError:
        return _error(self.file, node.start_mark.line + 1, path, message, hint=hint)

    def convert(self, node: yaml.Node, path: KeyPath) -> Any:
        self.nodes += 1
        if self.nodes > MAX_NODES:
            raise self.fail(node, path, f"YAML aliases here expand to more than {MAX_NODES} "
                            "values, the limit for scenario files",
                            hint="write the values out, or use fewer aliases")
        if id(node) in self.open:
            raise self.fail(node, path, "a YAML alias refers to a value that contains it",
                            hint="an anchored value cannot include itself")
        if len(path) > MAX_DEPTH:
            raise self.fail(node, path[:MAX_DEPTH], f"YAML aliases here nest more than "
                            f"{MAX_DEPTH} levels deep, the limit for scenario files")
        if node.tag not in _ALLOWED_TAGS:
            raise self.fail(node, path, f"YAML tag {short_repr(node.tag)} is not allowed in "
                            "scenario files", hint="use plain strings, numbers, booleans, "
                            "null, lists and mappings")
        self.lines.setdefault(path, node.start_mark.line + 1)
        if isinstance(node, yaml.ScalarNode):
            return self.scalar(node, path)
        self.open.add(id(node))
        try:
            if isinstance(node, yaml.MappingNode):
                return self.mapping(node, path)
            return [self.convert(item, (*path, i)) for i, item in enumerate(node.value)]
        finally:
            self.open.discard(id(node))

    def mapping(self, node: yaml.MappingNode, path: KeyPath) -> dict[Hashable, Any]:
        out: dict[Hashable, Any] = {}
        for key_node, value_node in node.value:
            if key_node.tag == _MERGE_TAG:
                raise self.fail(key_node, path, "YAML merge keys (<<) are not supported in "
                                "scenario files")
            if not isinstance(key_node, yaml.ScalarNode):
                got = "a list" if isinstance(key_node, yaml.SequenceNode) else "a mapping"
                raise self.fail(key_node, path, f"keys must be strings, got {got}")
            key = self.convert(key_node, path)
            if not isinstance(key, str):
                raise self.fail(key_node, path, f"keys must be strings, got {short_repr(key)}")
            if key in out:
                raise self.fail(key_node, (*path, key), f"duplicate key {short_repr(key)}",
                                hint="each key may appear once per mapping; remove one of them")
            child = (*path, key)
            self.lines[child] = key_node.start_mark.line + 1
            out[key] = self.convert(value_node, child)
        return out

    def scalar(self, node: yaml.ScalarNode, path: KeyPath) -> Any:
        is_int = node.tag == _INT_TAG
        if is_int and len(node.value) > _MAX_INTEGER_CHARS:  # not even built: 10**5000 is slow
            raise self.too_large(node, path)
        try:
            value = self.loader.construct_object(node)
        except Exception:  # PyYAML's constructors fail on a date like 2024-13-45 or a
            # forced tag (`!!int ''`, `!!bool x`, `!!timestamp x`) with ValueError,
            # IndexError, KeyError or AttributeError: each means "not readable as that".
            kind = node.tag.rsplit(":", 1)[-1]
            raise self.fail(node, path, f"cannot read {short_repr(node.value)} as !!{kind}",
                            hint="quote it to make it a string") from None
        if is_int and abs(value) > MAX_INTEGER:
            raise self.too_large(node, path)
        return value

    def too_large(self, node: yaml.ScalarNode, path: KeyPath) -> ScenarioError:
        return self.fail(node, path, f"the integer {short_repr(node.value)} is too large",
                         hint=f"scenario integers are at most {MAX_INTEGER}")
