"""Solution markers: the one syntax that separates the reference from the template.

A solution region is the lines strictly between a line ``# BEGIN SOLUTION``
and the next line ``# END SOLUTION``; each marker is the whole line once
leading and trailing whitespace is stripped, and both markers of a region
sit at the same indentation. Any other line naming "BEGIN SOLUTION" or
"END SOLUTION" (``#BEGIN SOLUTION``, ``# BEGIN SOLUTIONS``, a marker followed
by a comment, any letter case) is refused, as are nested, unterminated and
stray markers: each raises MarkerError with ``file:line``.

The parser is line-based (a marker inside a string literal still counts);
only ``strip_solutions`` needs the text to be valid Python, to find the
function each region belongs to.
"""
from __future__ import annotations

import ast
import io
import re
import tokenize
from dataclasses import dataclass

BEGIN = "# BEGIN SOLUTION"
END = "# END SOLUTION"

_MENTION = re.compile(r"\b(BEGIN|END)[\s_-]*SOLUTION", re.IGNORECASE)
"""Any line matching this and not exactly a marker is a malformed marker."""

MIN_LEAK_CHARS = 12
"""Solution lines shorter than this (comment removed) are too generic to prove a leak."""


class MarkerError(ValueError):
    """Solution markers are malformed, nested, unterminated or stray."""

    def __init__(self, filename: str, line: int, message: str):
        super().__init__(f"{filename}:{line}: {message}")
        self.filename = filename
        self.line = line
        self.message = message


@dataclass(frozen=True)
class Region:
    """One solution region of a file."""

    filename: str
    """The file's name as given to ``parse`` (used in messages)."""
    begin: int
    """1-based line number of the ``# BEGIN SOLUTION`` line."""
    end: int
    """1-based line number of the matching ``# END SOLUTION`` line."""
    indent: str
    """The markers' leading whitespace; the stub is written at this indentation."""
    body: tuple[str, ...]
    """The lines strictly between the markers, without their newlines."""

    @property
    def body_lines(self) -> range:
        """1-based line numbers of the body."""
        return range(self.begin + 1, self.end)


@dataclass(frozen=True)
class SolutionLine:
    """A line of a solution region that must never appear in a student release."""

    filename: str
    """The reference file holding it."""
    line: int
    """Its 1-based line number there."""
    code: str
    """The line's code: comment removed, surrounding whitespace stripped."""


def _split(text: str) -> list[str]:
    """Lines without their "\\n"; "\\n".join() of the result gives back ``text`` exactly."""
    return text.split("\n")


def _indent(line: str) -> str:
    return line[: len(line) - len(line.lstrip())]


def mentions_marker(line: str) -> bool:
    """Whether ``line`` is a marker or names one (a malformed marker, when not exact)."""
    return _MENTION.search(line) is not None


def parse(text: str, filename: str) -> list[Region]:
    """The solution regions of ``text``, in file order.

    Raises MarkerError naming ``filename`` and the line for a malformed
    marker, a BEGIN inside an open region (nesting), an END without a BEGIN,
    an END indented differently from its BEGIN, or a region never closed.
    """
    regions: list[Region] = []
    open_at: int | None = None
    open_indent = ""
    body: list[str] = []
    for number, line in enumerate(_split(text), start=1):
        stripped = line.strip()
        if stripped == BEGIN:
            if open_at is not None:
                raise MarkerError(
                    filename, number,
                    f"'{BEGIN}' inside the solution region opened at line {open_at}: "
                    f"regions cannot be nested; close that one with '{END}' first",
                )
            open_at, open_indent, body = number, _indent(line), []
        elif stripped == END:
            if open_at is None:
                raise MarkerError(
                    filename, number, f"'{END}' without a '{BEGIN}' above it (stray marker)"
                )
            if _indent(line) != open_indent:
                raise MarkerError(
                    filename, number,
                    f"'{END}' is indented by {len(_indent(line))} characters, its '{BEGIN}' "
                    f"at line {open_at} by {len(open_indent)}: indent both markers alike",
                )
            regions.append(Region(filename, open_at, number, open_indent, tuple(body)))
            open_at = None
        elif _MENTION.search(line):
            raise MarkerError(
                filename, number,
                f"malformed solution marker {stripped!r}: a marker is a line of its own "
                f"reading exactly '{BEGIN}' or '{END}'",
            )
        elif open_at is not None:
            body.append(line)
    if open_at is not None:
        raise MarkerError(
            filename, open_at, f"solution region opened here is never closed: add a '{END}' line"
        )
    return regions


def _syntax_tree(text: str, filename: str) -> ast.Module:
    try:
        return ast.parse(text, filename=filename)
    except SyntaxError as exc:
        raise MarkerError(filename, exc.lineno or 0, f"not valid Python: {exc.msg}") from None


def enclosing_function(tree: ast.Module, region: Region) -> str:
    """Name of the innermost ``def`` whose body holds the region.

    A def holds the region when it starts above it, is indented less than
    its markers, and no statement at the def's indentation or less comes
    between the def's last statement and the region (the markers are
    comments, which the syntax tree does not place). Raises MarkerError when
    no def holds the region: a stub at module level would fail on import.
    """
    statements = [node for node in ast.walk(tree) if isinstance(node, ast.stmt)]
    best: ast.FunctionDef | ast.AsyncFunctionDef | None = None
    for node in statements:
        if not isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            continue
        if node.lineno >= region.begin or node.col_offset >= len(region.indent):
            continue
        last = node.end_lineno or node.lineno
        closed = any(
            last < other.lineno < region.begin and other.col_offset <= node.col_offset
            for other in statements
        )
        if not closed and (best is None or node.lineno > best.lineno):
            best = node
    if best is None:
        raise MarkerError(
            region.filename, region.begin,
            "solution region outside any function: its stub "
            "'raise NotImplementedError(...)' needs an enclosing def",
        )
    return best.name


def stub_message(function: str, section: str | None = None) -> str:
    """The NotImplementedError message of a stubbed function."""
    where = "handout.md" if section is None else f"handout.md, section '{section}'"
    return f"{function}: not implemented yet (see {where})"


def _literal(text: str) -> str:
    """A Python string literal for ``text``, in double quotes when that needs no escapes."""
    if '"' in text or "\\" in text or not text.isprintable():
        return repr(text)
    return f'"{text}"'


def strip_solutions(text: str, filename: str, *, section: str | None = None) -> str:
    """The student version of ``text``: each region becomes one ``raise NotImplementedError``.

    The raise sits at the markers' indentation and names the innermost
    enclosing function (and ``section`` of the handout, when given); it
    replaces the two markers and everything between them. Every other byte
    of ``text`` (signatures, docstrings, hints, line endings) is kept.
    A generator whose body was a region becomes a plain function that
    raises on call. Raises MarkerError when the markers are malformed,
    a region is outside any function, or the result is not valid Python.
    """
    regions = parse(text, filename)
    if not regions:
        return text
    tree = _syntax_tree(text, filename)
    lines = _split(text)
    out: list[str] = []
    cursor = 0  # 0-based index of the next line to copy
    for region in regions:
        out.extend(lines[cursor : region.begin - 1])
        message = stub_message(enclosing_function(tree, region), section)
        # Keep a "\r" of a CRLF file on the line that replaces the marker.
        ending = "\r" if lines[region.begin - 1].endswith("\r") else ""
        out.append(f"{region.indent}raise NotImplementedError({_literal(message)}){ending}")
        cursor = region.end
    out.extend(lines[cursor:])
    result = "\n".join(out)
    _syntax_tree(result, f"{filename} (stripped)")
    return result


def remove_markers(text: str, filename: str) -> str:
    """The solution version of ``text``: the marker lines removed, all code kept."""
    regions = parse(text, filename)
    drop = {r.begin for r in regions} | {r.end for r in regions}
    return "\n".join(line for n, line in enumerate(_split(text), start=1) if n not in drop)


def _comment_columns(text: str) -> dict[int, int]:
    """Line number -> column where its comment starts.

    On text the tokenizer cannot read to the end, the comments before the
    problem are still found.
    """
    columns: dict[int, int] = {}
    try:
        for token in tokenize.generate_tokens(io.StringIO(text).readline):
            if token.type == tokenize.COMMENT:
                columns[token.start[0]] = token.start[1]
    except (tokenize.TokenError, SyntaxError):
        pass
    return columns


def _inert(node: ast.AST) -> bool:
    """Whether an expression only names or looks up values: no call, no operator."""
    if isinstance(node, (ast.Name, ast.Constant)):
        return True
    if isinstance(node, ast.Attribute):
        return _inert(node.value)
    if isinstance(node, ast.Subscript):
        return _inert(node.value) and _inert(node.slice)
    if isinstance(node, (ast.Tuple, ast.List)):
        return all(_inert(element) for element in node.elts)
    if isinstance(node, ast.Starred):
        return _inert(node.value)
    if isinstance(node, ast.JoinedStr):  # f"W{l}"
        return all(_inert(v.value) if isinstance(v, ast.FormattedValue) else True for v in node.values)
    return False


def _moves_values_only(code: str) -> bool:
    """Whether ``code`` is one statement that computes nothing (``N = X.shape[0]``, ``return A, cache``)."""
    try:
        body = ast.parse(code).body
    except SyntaxError:  # a continuation line of a longer statement
        return False
    if len(body) != 1:
        return False
    node = body[0]
    if isinstance(node, ast.Assign):
        return _inert(node.value) and all(_inert(target) for target in node.targets)
    if isinstance(node, ast.Return):
        return node.value is None or _inert(node.value)
    if isinstance(node, ast.Expr) and isinstance(node.value, (ast.Yield, ast.YieldFrom)):
        return node.value.value is None or _inert(node.value.value)
    return False


def computation(code: str) -> str:
    """The part of a line that computes: ``value`` of ``name = value`` or ``return value``, else the line.

    ``L = sum(1 for key in params if key.startswith("W"))`` computes what
    ``return sum(...)`` computes; the leak check compares computations.
    """
    try:
        body = ast.parse(code).body
    except SyntaxError:
        return code
    if len(body) == 1:
        node = body[0]
        simple_target = (
            isinstance(node, ast.Assign) and len(node.targets) == 1 and isinstance(node.targets[0], ast.Name)
        )
        if (simple_target or isinstance(node, ast.Return)) and node.value is not None:
            return ast.get_source_segment(code, node.value) or code
    return code


def is_trivial(code: str) -> bool:
    """Whether a line of solution code is too generic to count as a leak.

    Trivial: shorter than MIN_LEAK_CHARS characters; without a letter
    (brackets, punctuation); a block header ending in ":" (``for key in
    params:``: tests and hints share control flow, the statements inside
    carry the solution); or a statement that only moves values, an
    assignment, return or yield of names, attributes and subscripts without
    any call or operator (``N = X.shape[0]``, ``return dA_prev, dW, db``).
    """
    return (
        len(code) < MIN_LEAK_CHARS
        or not any(c.isalpha() for c in code)
        or code.endswith(":")
        or _moves_values_only(code)
    )


def solution_lines(text: str, filename: str) -> list[SolutionLine]:
    """The non-trivial lines of every solution region (see ``is_trivial``).

    A line's code is the line with its comment removed (found by the
    tokenizer, so a "#" inside a string stays) and whitespace stripped.
    """
    comments = _comment_columns(text)
    found: list[SolutionLine] = []
    for region in parse(text, filename):
        for number, line in zip(region.body_lines, region.body):
            code = line[: comments[number]] if number in comments else line
            code = code.strip()
            if not is_trivial(code):
                found.append(SolutionLine(filename, number, code))
    return found
