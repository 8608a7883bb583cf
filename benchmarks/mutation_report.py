"""Summarise a mutmut run: kill rate per file and every surviving mutant with its diff.

Run by ``make mutation`` after ``mutmut run`` (configured in ``pyproject.toml``,
``[tool.mutmut]``). Reads the verdicts mutmut keeps in ``mutants/<source>.meta`` for every
module of ``rudra_env/core/`` (whatever the modules are called) and ``rudra_env/contagion.py``,
prints one summary line, writes a Markdown report (default ``benchmarks/results/mutation.md``)
and exits 1 when the kill rate is below ``--min`` percent.

Counted as killed: mutants a test failed on, and those that ran past their time limit (a
mutated loop bound that never ends is caught). Not killed: survivors and mutants no selected
test reaches ("no tests"). Mutants not run yet (``make mutation MUTANTS=...`` over one module)
are left out of the rate and counted apart.

    python benchmarks/mutation_report.py --min 90 --out benchmarks/results/mutation.md
"""

from __future__ import annotations

import argparse
import ast
import json
import os
import sys
from collections import Counter, defaultdict
from pathlib import Path

# mutmut is pinned in constraints.txt; these two are the functions behind `mutmut show`.
from mutmut.mutation.diff_apply import get_diff_for_mutant
from mutmut.utils.format_utils import orig_function_and_class_names_from_key

ROOT = Path(__file__).resolve().parents[1]
SOURCES = ("rudra_env/core/**/*.py", "rudra_env/contagion.py")

KILLED = {1: "killed", 3: "killed"}
TIMEOUT = {24, -24, 152, 255, 36}
STATUS_ORDER = ("killed", "timeout", "survived", "no tests", "suspicious", "not checked")


def status_of(exit_code: int | None) -> str:
    """mutmut's exit code of one mutant's test run, in words (mutmut/stats.py)."""
    if exit_code is None:
        return "not checked"
    if exit_code in KILLED:
        return "killed"
    if exit_code in TIMEOUT:
        return "timeout"
    if exit_code == 0:
        return "survived"
    if exit_code in (5, 33):
        return "no tests"
    if exit_code == 34:
        return "not checked"  # skipped
    if exit_code in (37, -11, -9):
        return "killed"  # caught by the type checker, or a crash
    return "suspicious"


def source_files() -> list[str]:
    found = {p.relative_to(ROOT).as_posix() for pattern in SOURCES for p in ROOT.glob(pattern)}
    return sorted(found)


def function_spans(path: Path) -> dict[tuple[str | None, str], tuple[int, int]]:
    """(class or None, function) -> (def line, last line) for the functions of one file."""
    spans: dict[tuple[str | None, str], tuple[int, int]] = {}

    def visit(body: list[ast.stmt], cls: str | None) -> None:
        for node in body:
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                spans[(cls, node.name)] = (node.lineno, node.end_lineno or node.lineno)
            elif isinstance(node, ast.ClassDef):
                visit(node.body, node.name if cls is None else f"{cls}.{node.name}")

    visit(ast.parse(path.read_text()).body, None)
    return spans


def changed_lines(diff: str) -> tuple[int, list[str]]:
    """(index of the first changed line in the function's code, the -/+ lines) of a mutant diff."""
    lines = diff.splitlines()
    offset, changes = 0, []
    for line in lines:
        if line.startswith("@@"):
            offset = int(line.split()[1].lstrip("-").split(",")[0]) - 1
        elif line.startswith(("---", "+++")):
            continue
        elif line.startswith(("-", "+")):
            changes.append(line)
        elif not changes:
            offset += 1
    return offset, changes


def locate(source: list[str], span: tuple[int, int] | None, offset: int, removed: str) -> int:
    """File line of the removed line: the last match at or before the def line plus its offset.

    mutmut's diff numbers lines from the comments above the function, so the def line plus the
    offset is an upper bound; the nearest identical line at or above it is the mutated one.
    """
    if span is None:
        return 0
    text = removed[1:].strip()  # a method's diff is dedented
    guess = span[0] + offset
    hits = [n for n in range(1, min(guess, span[1]) + 1) if source[n - 1].strip() == text]
    return hits[-1] if hits else span[0]


def not_killed() -> list[str]:
    """Names of the mutants that survived or that no test reached."""
    names = []
    for rel in source_files():
        meta = ROOT / "mutants" / f"{rel}.meta"
        if meta.exists():
            codes = json.loads(meta.read_text())["exit_code_by_key"]
            names += [n for n, c in codes.items() if status_of(c) in ("survived", "no tests")]
    return names


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--min", type=float, default=90.0, help="kill rate to reach, in percent")
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks/results/mutation.md")
    parser.add_argument(
        "--not-killed",
        action="store_true",
        help="only print the names of the mutants not killed (to rerun them after new tests)",
    )
    args = parser.parse_args()
    os.chdir(ROOT)  # mutmut reads mutants/ and pyproject.toml from the working directory
    if args.not_killed:
        print(" ".join(not_killed()))
        return 0

    per_file: dict[str, Counter] = {}
    survivors: dict[str, list[tuple[int, str, str, list[str]]]] = defaultdict(list)
    for rel in source_files():
        meta = ROOT / "mutants" / f"{rel}.meta"
        if not meta.exists():
            continue
        codes = json.loads(meta.read_text())["exit_code_by_key"]
        if not codes:
            continue
        per_file[rel] = Counter(status_of(code) for code in codes.values())
        source = (ROOT / rel).read_text().splitlines()
        spans = function_spans(ROOT / rel)
        for name, code in codes.items():
            status = status_of(code)
            if status not in ("survived", "no tests", "suspicious"):
                continue
            function, cls = orig_function_and_class_names_from_key(name)
            diff = get_diff_for_mutant(name, path=rel)
            offset, changes = changed_lines(diff)
            removed = next((c for c in changes if c.startswith("-")), "-")
            line = locate(source, spans.get((cls, function)), offset, removed)
            survivors[rel].append((line, name.rpartition(".")[2], status, changes))

    if not per_file:
        print("no mutmut results under mutants/: run `make mutation` first", file=sys.stderr)
        return 2

    total = sum(per_file.values(), Counter())
    checked = sum(total.values()) - total["not checked"]
    caught = total["killed"] + total["timeout"]
    rate = 100.0 * caught / checked if checked else 0.0
    summary = (
        f"mutation: {caught}/{checked} killed ({rate:.1f} %, {total['timeout']} by timeout), "
        f"{total['survived']} survived, {total['no tests']} reached by no test, "
        f"{total['suspicious']} suspicious, {total['not checked']} not run; minimum {args.min:g} %"
    )

    out = [
        "# Mutation testing report",
        "",
        "Written by `make mutation` (mutmut, `benchmarks/mutation_report.py`).",
        "",
        summary,
        "",
        "| file | " + " | ".join(STATUS_ORDER) + " | kill rate |",
        "|---" * (len(STATUS_ORDER) + 2) + "|",
    ]
    for rel, counts in per_file.items():
        done = sum(counts.values()) - counts["not checked"]
        share = f"{100.0 * (counts['killed'] + counts['timeout']) / done:.1f} %" if done else "-"
        cells = " | ".join(str(counts[s]) for s in STATUS_ORDER)
        out.append(f"| {rel} | {cells} | {share} |")
    out += ["", "## Mutants not killed", ""]
    for rel, rows in survivors.items():
        out += [f"### {rel} ({len(rows)})", ""]
        for line, name, status, changes in sorted(rows, key=lambda r: (r[0], r[1])):
            note = "" if status == "survived" else f" ({status})"
            out += [f"- `{rel}:{line}` {name}{note}", "", "  ```diff"]
            out += [f"  {c}" for c in changes] + ["  ```", ""]
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text("\n".join(out).rstrip() + "\n")

    print(summary)
    print(f"survivors with their diffs: {args.out}")
    return 0 if checked and rate >= args.min else 1


if __name__ == "__main__":
    sys.exit(main())
