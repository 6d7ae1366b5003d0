"""Run every benchmark; print one table of absolute figures and library / baseline
ratios; write the same rows to ``benchmarks/results/latest.json``.

``nox -s bench`` runs this; ``python benchmarks/run_all.py --quick`` checks that
every benchmark still runs, with tiny sizes. ``--only NAME`` (repeatable) runs
some of them.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from types import ModuleType

import failure_latency
import restart_throughput
import start_stop
import triotp_compare
from _common import RESULTS, Row, parse, parser, print_table, write_json

BENCHMARKS: dict[str, ModuleType] = {
    "restart_throughput": restart_throughput,
    "failure_latency": failure_latency,
    "start_stop": start_stop,
    "triotp_compare": triotp_compare,
}


def main() -> None:
    arguments = parser(__doc__)
    arguments.add_argument(
        "--only", action="append", choices=sorted(BENCHMARKS), help="run only these"
    )
    args = parse(arguments)
    rows: list[Row] = []
    notes: list[str] = []
    seconds: dict[str, float] = {}
    for name, module in BENCHMARKS.items():
        if args.only and name not in args.only:
            continue
        print(f"running {name}...", flush=True)
        begin = time.perf_counter()
        collect: Callable[[bool, int], tuple[list[Row], list[str]]] = module.collect
        module_rows, module_notes = collect(args.quick, args.repeat)
        seconds[name] = time.perf_counter() - begin
        rows.extend(module_rows)
        notes.extend(module_notes)
    print()
    print_table(rows, notes)
    path = args.json or RESULTS / "latest.json"
    write_json(path, rows, notes, seconds=seconds, quick=args.quick)
    missed = [row for row in rows if row.ok is False]
    print(f"\n{len(rows)} rows, {len(missed)} target(s) missed; written to {path}")


if __name__ == "__main__":
    main()
