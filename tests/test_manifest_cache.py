"""Is the test manifest collected once and reused only while what it depends on is unchanged?"""
import shutil
from pathlib import Path

from nnkit.grading.grade import build_grader
from nnkit.grading.runner import collect_manifest, manifest_key
from nnkit.course.config import TESTS_DIR

ROOT = Path(__file__).resolve().parent.parent


def test_a_changed_test_file_is_collected_again(tmp_path):
    """After a test's points change, does the grader collect the suites again instead of reusing the old manifest?"""
    tests = tmp_path / "tests"
    shutil.copytree(TESTS_DIR, tests, ignore=shutil.ignore_patterns("__pycache__"))
    grader = build_grader(tests=tests)
    before = {t["name"]: t["points"] for t in grader.manifest}
    key = manifest_key(grader)
    assert (grader.cache_dir / f"manifest-{key}.json").is_file()
    assert collect_manifest(grader) == grader.manifest

    public = tests / "public" / "test_activations.py"
    source = public.read_text()
    first = source.index("@pytest.mark.points(1)")
    public.write_text(source[:first] + "@pytest.mark.points(3)" + source[first + len("@pytest.mark.points(1)"):])
    assert manifest_key(grader) != key
    after = {t["name"]: t["points"] for t in collect_manifest(grader)}
    changed = {name for name in before if before[name] != after[name]}
    assert len(changed) == 1 and after[changed.pop()] == 3
