"""The code's size limits (pyproject.toml [tool.ruff.lint], docs/architecture.md): every
function at most 70 lines and every module at most 400, in the package, the jobs, the DAGs and
the benchmark. ruff checks complexity (C901) and statements (PLR0915); lines it does not."""

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
FOLDERS = ("src", "jobs", "dags", "bench")
MAX_FUNCTION_LINES = 70
MAX_MODULE_LINES = 400


def _modules() -> list[Path]:
    return sorted(p for folder in FOLDERS for p in (ROOT / folder).rglob("*.py"))


def test_there_is_code_to_measure():
    assert len(_modules()) > 50


def test_no_module_is_over_the_limit():
    over = {
        str(p.relative_to(ROOT)): n
        for p in _modules()
        if (n := len(p.read_text().splitlines())) > MAX_MODULE_LINES
    }
    assert over == {}


def test_no_function_is_over_the_limit():
    over = {}
    for path in _modules():
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                lines = node.end_lineno - node.lineno + 1
                if lines > MAX_FUNCTION_LINES:
                    over[f"{path.relative_to(ROOT)}:{node.lineno} {node.name}"] = lines
    assert over == {}
