"""Mutation testing of the core with mutmut: each module against the tests that cover it.

    python -m benchmarks.mutation reward_model/interface.py reward_model/grpo.py   # the named modules
    python -m benchmarks.mutation --changed main     # the core modules (or their tests) changed since main
    python -m benchmarks.mutation --all              # every module in CORE

Run it with the Python that has the project and the `dev` extra (mutmut) installed. Each module runs in its
own scratch copy of the repository, because mutmut writes a mutants/ folder and reads its settings from
setup.cfg in the folder it runs in; the working tree is never touched. Prints a score per module and the
diff of every mutant no test killed. Not part of CI: run it before resolving work that touches these modules.
"""

from __future__ import annotations

import fnmatch
import re
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

from t2i_guidance.input_checks import OneLineParser, fail

ROOT = Path(__file__).resolve().parents[1]
COPIED = ("reward_model", "t2i_guidance", "benchmarks", "apps", "tests", "pyproject.toml")
KILLED = {"killed", "timeout", "segfault", "caught by type check"}
NOT_RUN = {"skipped", "not checked"}


@dataclass(frozen=True)
class Target:
    tests: tuple[str, ...]  # pytest arguments selecting the tests that cover the module
    # mutate only these top-level functions, classes or methods ("Class.method"); () mutates the whole module
    functions: tuple[str, ...] = ()


# The GRPO filter and gates' own tests; the trainer tests that also reach them train a model (minutes each).
GRPO_UNIT_TESTS = "std_filter_drops or std_filter_at or gate_rounds or gating_keeps or rules_differ or gate_weights or batch_rule or rows_without"
SCORER_FAST_TESTS = ("not end_to_end and not tiny_scorer and not rescoring and not survives_a_new_scorer "
                     "and not other_settings")
SELECTION_TESTS = "tests/test_search_selection_mutants.py"
CORE: dict[str, Target] = {
    "reward_model/interface.py": Target(("tests/test_scorer_parsing.py",), ("parse_answer", "has_strict_format")),
    "reward_model/rewards.py": Target(("tests/test_train_rewards.py", "tests/test_rewards_mutants.py",
                                       "-k", "not real_processes")),
    "reward_model/grpo.py": Target(
        ("tests/test_train_grpo.py", "-k", GRPO_UNIT_TESTS),
        ("std_filter_keep", "per_response_entropy_mask", "normalise_gate_to_gated_tokens", "batch_entropy_mask"),
    ),
    # The scorer's logic with a scripted backend; the tests that load a model take seconds per mutant.
    "reward_model/scorer.py": Target(("tests/test_scorer_mutants.py", "tests/test_scorer_cache_mutants.py",
                                      "tests/test_scorer_seeded.py",
                                      "tests/test_scorer_cache.py", "-k", SCORER_FAST_TESTS)),
    "t2i_guidance/result.py": Target(("tests/test_search_batched_scoring.py", "tests/test_aggregate.py",
                                      "tests/test_result_ranking.py"),
                                     ("parse_weights", "active_dimensions", "aggregate", "lower_confidence_bound",
                                      "rank_candidates", "pareto_front")),
    "t2i_guidance/input_checks.py": Target(("tests/test_cli_bad_input.py", "tests/test_input_checks_mutants.py")),
    # The stopping rule's own tests; the strategy runs in test_search_stopping.py also reach it but draw pictures.
    "t2i_guidance/ledger.py": Target(("tests/test_search_stopping.py", "tests/test_stopping_mutants.py",
                                      "-k", "mutants or expected_gain"), ("StopRule", "expected_gain")),
    # With a fake generator and scorer; test_search_strategies.py and test_search_paths.py draw pictures.
    "t2i_guidance/search/base.py": Target(("tests/test_search_batched_scoring.py", "tests/test_search_base_mutants.py",
                                           "tests/test_search_best_of_n_mutants.py")),
    # The selection on made-up scores and checkpoints; the strategies' runs draw pictures (seconds a mutant).
    "t2i_guidance/search/cascade.py": Target((SELECTION_TESTS,), ("Cascade",)),
    "t2i_guidance/search/particles.py": Target((SELECTION_TESTS,), ("systematic_resample", "ParticleResampling")),
    "t2i_guidance/search/path_search.py": Target((SELECTION_TESTS,), ("PathSearch",)),
    # Resume and writes; the item's own run (generation, judging) is left to test_bench_runner.py's runs.
    "benchmarks/run_engine.py": Target(
        ("tests/test_run_engine_mutants.py", "tests/test_bench_runner.py", "-k", "mutants or png_save or seeds_fixed"),
        ("Shard", "base_seed", "image_seeds", "check_or_write_config", "_save_png", "run_folder_rows",
         "Runner.work", "Runner.missing_keys", "Runner.run"),
    ),
}
_RESULT_LINE = re.compile(r"^\s*(\S+__mutmut_\d+): (.+)$")


def mutant_globs(module: str, target: Target) -> list[str]:
    """mutmut's names for the mutants to run: `pkg.module.x_function__mutmut_N` (methods: `xǁClassǁ...`)."""
    dotted = module.removesuffix(".py").replace("/", ".")
    # mutmut names a function's mutants x_NAME__mutmut_K and a class's (CamelCase) xǁNAMEǁMETHOD__mutmut_K
    return [f"{dotted}.xǁ{name.replace('.', 'ǁ')}__mutmut_*" if "." in name
            else f"{dotted}.xǁ{name}ǁ*" if name[:1].isupper() else f"{dotted}.x_{name}__mutmut_*"
            for name in target.functions] or [f"{dotted}.*"]


def setup_cfg(module: str, target: Target) -> str:
    lines = lambda values: "".join(f"\n    {value}" for value in values)  # noqa: E731 - one multi-line value
    package = module.split("/")[0]
    return (f"[mutmut]\nsource_paths = {package}/\nonly_mutate = {module}\n"
            f"also_copy ={lines(p + '/' for p in COPIED[:4] if p != package)}\n"
            f"pytest_add_cli_args_test_selection ={lines(target.tests)}\n"
            "pytest_add_cli_args = -p no:cacheprovider\n")


def changed_modules(ref: str) -> list[str]:
    """Core modules whose file or covering tests differ from `ref` (committed or not)."""
    out = subprocess.run(["git", "diff", "--name-only", ref], cwd=ROOT, capture_output=True, text=True, check=True)
    changed = set(out.stdout.split())
    return [m for m, t in CORE.items() if m in changed or changed & {a for a in t.tests if a.endswith(".py")}]


def run_module(module: str, work: Path, jobs: int) -> tuple[dict[str, int], list[str]]:
    """Counts by status and the `mutmut show` diff of every survivor, for one module in a scratch copy."""
    target = CORE[module]
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    for name in COPIED:
        source = ROOT / name
        if source.is_dir():
            shutil.copytree(source, work / name, ignore=shutil.ignore_patterns("__pycache__", "mutants"))
        else:
            shutil.copy2(source, work / name)
    (work / "setup.cfg").write_text(setup_cfg(module, target))
    mutmut = [sys.executable, "-m", "mutmut"]
    globs = mutant_globs(module, target)
    subprocess.run([*mutmut, "run", "--max-children", str(jobs), *globs], cwd=work, check=True,
                   stdout=subprocess.DEVNULL)
    listing = subprocess.run([*mutmut, "results", "--all", "true"], cwd=work, capture_output=True, text=True,
                             check=True).stdout
    counts: dict[str, int] = {}
    survivors = []
    for line in listing.splitlines():
        match = _RESULT_LINE.match(line)
        if not match or not any(fnmatch.fnmatchcase(match[1], g) for g in globs):
            continue
        name, status = match[1], match[2].strip()
        counts[status] = counts.get(status, 0) + 1
        if status not in KILLED | NOT_RUN:
            shown = subprocess.run([*mutmut, "show", name], cwd=work, capture_output=True, text=True).stdout
            survivors.append(f"{status}: {shown.strip()}")
    return counts, survivors


def score(counts: dict[str, int]) -> tuple[int, int]:
    """(killed, tried): mutants no test could reach count as survivors, skipped ones not at all."""
    killed = sum(n for status, n in counts.items() if status in KILLED)
    return killed, sum(n for status, n in counts.items() if status not in NOT_RUN)


def main(argv: list[str] | None = None) -> int:
    parser = OneLineParser(prog="python -m benchmarks.mutation", description=__doc__.splitlines()[0])
    parser.add_argument("modules", nargs="*", help=f"core modules, of: {', '.join(CORE)}")
    parser.add_argument("--changed", metavar="REF", help="the core modules changed since this git ref")
    parser.add_argument("--all", action="store_true", help="every core module")
    parser.add_argument("--jobs", type=int, default=1, help="mutants tested at once (default 1)")
    parser.add_argument("--work", type=Path, help="scratch folder (default: a new temporary one)")
    args = parser.parse_args(argv)
    modules = list(CORE) if args.all else args.modules + (changed_modules(args.changed) if args.changed else [])
    unknown = [m for m in modules if m not in CORE]
    if unknown or not modules:
        fail(f"name core modules ({', '.join(CORE)}), --changed REF or --all; unknown: {unknown}")
    work_root = args.work or Path(tempfile.mkdtemp(prefix="mutation-"))
    print("| module | killed | tried | score |\n|---|---|---|---|")
    details = []
    for module in dict.fromkeys(modules):
        counts, survivors = run_module(module, work_root / module.replace("/", "_"), args.jobs)
        killed, tried = score(counts)
        print(f"| `{module}` | {killed} | {tried} | {100 * killed / max(tried, 1):.0f} % |", flush=True)
        details += [f"## {module}", *survivors]
    print("\n" + "\n\n".join(details))
    return 0


if __name__ == "__main__":
    sys.exit(main())
