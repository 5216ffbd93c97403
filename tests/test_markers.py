"""Specification of the solution-marker parser (nnkit.releases.markers)."""
import ast
import textwrap

import pytest

from nnkit.releases import markers
from nnkit.releases.markers import MarkerError


def src(text):
    return textwrap.dedent(text).lstrip("\n")


GRADED = src('''
    """A graded module."""
    import numpy as np


    def helper(x):
        """Provided: kept as it is."""
        return x + 1


    def square(x):
        """Square x.

        Hint: multiply x by itself.
        """
        # BEGIN SOLUTION
        y = np.multiply(x, x)  # elementwise
        return y
        # END SOLUTION


    def batches(X, size):
        """Yield slices of X."""
        # BEGIN SOLUTION
        for start in range(0, len(X), size):
            yield X[start:start + size]
        # END SOLUTION
''')

STRIPPED = src('''
    """A graded module."""
    import numpy as np


    def helper(x):
        """Provided: kept as it is."""
        return x + 1


    def square(x):
        """Square x.

        Hint: multiply x by itself.
        """
        raise NotImplementedError("square: not implemented yet (see handout.md, section 'Part 1: maths')")


    def batches(X, size):
        """Yield slices of X."""
        raise NotImplementedError("batches: not implemented yet (see handout.md, section 'Part 1: maths')")
''')


def test_parse_finds_regions():
    """Are the regions found with their marker lines, indentation and body?"""
    regions = markers.parse(GRADED, "graded.py")
    assert [(r.begin, r.end, r.indent) for r in regions] == [(15, 18, "    "), (23, 26, "    ")]
    assert regions[0].body == ("    y = np.multiply(x, x)  # elementwise", "    return y")
    assert list(regions[1].body_lines) == [24, 25]


def test_no_markers_no_regions():
    """Does a file without markers have no regions, and stay unchanged when stripped?"""
    text = "def f():\n    return 1\n"
    assert markers.parse(text, "f.py") == []
    assert markers.strip_solutions(text, "f.py") == text
    assert markers.remove_markers(text, "f.py") == text


def test_nested_regions_raise():
    """Is an error thrown, naming file and line, when a solution region is nested in another?"""
    text = src('''
        def f():
            # BEGIN SOLUTION
            x = 1
            # BEGIN SOLUTION
            return x
            # END SOLUTION
            # END SOLUTION
    ''')
    with pytest.raises(MarkerError, match=r"^nested\.py:4: .*opened at line 2: regions cannot be nested") as info:
        markers.parse(text, "nested.py")
    assert (info.value.filename, info.value.line) == ("nested.py", 4)


def test_unterminated_region_raises():
    """Is an error thrown at the BEGIN line when a region is never closed?"""
    text = "def f():\n    # BEGIN SOLUTION\n    return 1\n"
    with pytest.raises(MarkerError, match=r"^open\.py:2: .*never closed"):
        markers.parse(text, "open.py")


def test_stray_end_raises():
    """Is an error thrown when END SOLUTION comes without a BEGIN?"""
    text = "def f():\n    return 1\n    # END SOLUTION\n"
    with pytest.raises(MarkerError, match=r"^stray\.py:3: .*without a '# BEGIN SOLUTION'"):
        markers.parse(text, "stray.py")


def test_second_end_is_stray():
    """Is an END after a closed region an error, at the second END's line?"""
    text = "def f():\n    # BEGIN SOLUTION\n    return 1\n    # END SOLUTION\n    # END SOLUTION\n"
    with pytest.raises(MarkerError, match=r"^f\.py:5: "):
        markers.parse(text, "f.py")


@pytest.mark.parametrize("typo", [
    "#BEGIN SOLUTION",
    "# BEGIN SOLUTIONS",
    "# begin solution",
    "#  BEGIN SOLUTION",
    "# BEGIN SOLUTION: sigmoid",
    "x = 1  # BEGIN SOLUTION",
    "# END  SOLUTION",
    "## END SOLUTION",
])
def test_malformed_marker_raises(typo):
    """Is a line that names a marker without being exactly one an error, with file and line?"""
    text = f"def f():\n    {typo}\n    return 1\n"
    with pytest.raises(MarkerError, match=r"^typo\.py:2: malformed solution marker"):
        markers.parse(text, "typo.py")


def test_end_indented_differently_raises():
    """Is an END indented differently from its BEGIN an error at the END's line?"""
    text = "def f():\n    if True:\n        # BEGIN SOLUTION\n        return 1\n    # END SOLUTION\n"
    with pytest.raises(MarkerError, match=r"^f\.py:5: .*indented by 4 .* line 3 by 8"):
        markers.parse(text, "f.py")


def test_strip_replaces_regions_and_keeps_the_rest():
    """Does stripping replace each region by a raise naming its function and keep every other byte?"""
    assert markers.strip_solutions(GRADED, "graded.py", section="Part 1: maths") == STRIPPED


def test_stripped_generator_raises_on_call():
    """Does a generator whose body was a region become a function that raises when called?"""
    namespace = {}
    exec(compile(markers.strip_solutions(GRADED, "graded.py"), "graded.py", "exec"), namespace)
    with pytest.raises(NotImplementedError, match=r"^batches: not implemented yet \(see handout\.md\)$"):
        namespace["batches"]([1, 2, 3], 2)
    with pytest.raises(NotImplementedError, match=r"^square: "):
        namespace["square"](3)
    assert namespace["helper"](1) == 2


def test_stub_names_the_innermost_function():
    """Is the stub of a region in a nested function named after the nested function?"""
    text = src('''
        def outer(x):
            def inner(y):
                if y:
                    # BEGIN SOLUTION
                    return y
                    # END SOLUTION
                return 0
            return inner(x)
    ''')
    stripped = markers.strip_solutions(text, "n.py")
    assert '            raise NotImplementedError("inner: not implemented yet (see handout.md)")\n' in stripped
    ast.parse(stripped)


def test_stub_after_a_finished_function_is_attributed_to_the_right_one():
    """Is a region at the end of the second function attributed to it, not to the first?"""
    text = "def a():\n    return 1\n\n\ndef b():\n    x = 2\n    # BEGIN SOLUTION\n    return x\n    # END SOLUTION\n"
    assert 'raise NotImplementedError("b: ' in markers.strip_solutions(text, "ab.py")


def test_region_outside_a_function_raises():
    """Is a region at module level an error (its stub would fail on import)?"""
    text = "x = 1\n# BEGIN SOLUTION\ny = 2\n# END SOLUTION\n"
    with pytest.raises(MarkerError, match=r"^m\.py:2: .*outside any function"):
        markers.strip_solutions(text, "m.py")


def test_invalid_python_raises_with_line():
    """Is a reference that is not valid Python reported with its file and line?"""
    text = "def f():\n    # BEGIN SOLUTION\n    return (1\n    # END SOLUTION\n"
    with pytest.raises(MarkerError, match=r"^bad\.py:\d+: not valid Python"):
        markers.strip_solutions(text, "bad.py")


def test_crlf_line_endings_are_kept():
    """Are Windows line endings kept, on the copied lines and on the stub?"""
    text = GRADED.replace("\n", "\r\n")
    assert markers.strip_solutions(text, "graded.py", section="Part 1: maths") == STRIPPED.replace("\n", "\r\n")


def test_remove_markers_keeps_the_code():
    """Does the solution version drop exactly the marker lines and nothing else?"""
    removed = markers.remove_markers(GRADED, "graded.py")
    kept = [line for line in GRADED.split("\n") if line.strip() not in (markers.BEGIN, markers.END)]
    assert removed == "\n".join(kept)
    assert "SOLUTION" not in removed
    assert len(removed.split("\n")) == len(GRADED.split("\n")) - 4


def test_solution_lines_skip_trivial_lines():
    """Are the leak-check lines the non-trivial ones, with their comments removed?"""
    text = src('''
        def f(params, grads, lr):
            # BEGIN SOLUTION
            for key in params:
                params[key] -= lr * grads[key]  # in place
            s = "# not a comment".strip()
            total = 0
            ((1 + 2) * (3 + 4))
            N = params["W1"].shape[0]
            grads[f"W{N}"] = params[f"W{N}"]
            s = sigmoid(params)
            grads[len(params)] = 1.0
            return params, grads
            # END SOLUTION
    ''')
    found = markers.solution_lines(text, "f.py")
    assert [(line.line, line.code) for line in found] == [
        (4, "params[key] -= lr * grads[key]"),
        (5, 's = "# not a comment".strip()'),
        (10, "s = sigmoid(params)"),
        (11, "grads[len(params)] = 1.0"),
    ]


@pytest.mark.parametrize("code, expected", [
    ('L = sum(1 for key in params if key.startswith("W"))', 'sum(1 for key in params if key.startswith("W"))'),
    ("return A_prev @ W + b", "A_prev @ W + b"),
    ("dA_prev, dW = f(dZ)", "dA_prev, dW = f(dZ)"),
    ("params[key] -= lr * grads[key]", "params[key] -= lr * grads[key]"),
    ("dZ, cache[f\"A{l - 1}\"], params[f\"W{l}\"]", "dZ, cache[f\"A{l - 1}\"], params[f\"W{l}\"]"),
])
def test_computation_of_a_line(code, expected):
    """Is the computation of `name = value` and `return value` the value, and of anything else the line?"""
    assert markers.computation(code) == expected
