"""Benchmark: what the guardrails add to the relay's decision on each browser instruction.

The relay decides each instruction from the browser before it is recorded and
forwarded: the filter (always), then, when rules apply to the session, the
typed-line guard (the text stage's key decoder; on Enter, every typed rule on
the line). This measures that decision in process, per instruction, with no
rules (the relay's path today) and with 50 rules (words, regexes and the
shipped preset), side by side: p50 and p99 for ordinary keys and for the Enter
that submits a line. It is the added time on the relay's path; the network,
guacd and the recording's write are the same in both columns and not measured
here (bench/gateway.py measures them end to end).

    .venv/bin/python bench/guardrails.py [--lines 2000]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from gui_recorder.gateway.filter import ClientFilter, ClientPolicy  # noqa: E402
from gui_recorder.guardrails.rules import Rule, RuleSet, compile_pattern  # noqa: E402
from gui_recorder.guardrails.typed import TypedGuard  # noqa: E402
from gui_recorder.protocol import Parser  # noqa: E402
from gui_recorder.text.keys import keystroke  # noqa: E402

TIMEOUT_MS = 20.0
LINE = "Get-ChildItem -Recurse C:\\inetpub\\logs | Select-String -Pattern error -List"


def fifty_rules() -> RuleSet:
    rules = [Rule("preset", compile_pattern("preset", ["destructive-windows-commands"], TIMEOUT_MS), action="block")]
    for n in range(25):
        rules.append(Rule(f"words {n}", compile_pattern("words", [f"secretword{n}", f"drop table t{n}"], TIMEOUT_MS),
                          source="typed"))
    for n in range(24):
        rules.append(Rule(f"regex {n}", compile_pattern("regex", [rf"\b(?:curl|wget)\s+\S*evil{n}\.example"],
                                                        TIMEOUT_MS), action="block", source="typed"))
    assert len(rules) == 50
    return RuleSet(rules, TIMEOUT_MS)


def measure(rules: RuleSet | None, lines: int) -> tuple[list[float], list[float], int]:
    keys_us, enter_us = [], []
    filt = ClientFilter(ClientPolicy())
    guard = TypedGuard(rules) if rules else None
    line = Parser().feed_text("".join(keystroke(c) for c in LINE + "\n"))
    clock = time.perf_counter_ns
    for _ in range(lines):
        for i, ins in enumerate(line):
            start = clock()
            filt.check(ins)
            if guard is not None:
                guard.key(ins)
            elapsed = (clock() - start) / 1000
            (enter_us if i == len(line) - 2 else keys_us).append(elapsed)
    return keys_us, enter_us, guard.rules.timeouts if guard else 0


def pct(values: list[float], q: float) -> float:
    return statistics.quantiles(values, n=100)[q - 1] if len(values) > 1 else values[0]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lines", type=int, default=2000)
    args = parser.parse_args()
    measure(fifty_rules(), 50)  # warm up
    none_keys, none_enter, _ = measure(None, args.lines)
    rules_keys, rules_enter, timeouts = measure(fifty_rules(), args.lines)
    print(f"relay decision per browser instruction, {args.lines} lines of {len(LINE)} characters, in microseconds")
    print(f"{'':22}{'no rules':>12}{'50 rules':>12}{'added':>12}")
    for name, a, b in (("key p50", none_keys, rules_keys), ("key p99", none_keys, rules_keys),
                       ("Enter p50", none_enter, rules_enter), ("Enter p99", none_enter, rules_enter)):
        q = 50 if "p50" in name else 99
        x, y = pct(a, q), pct(b, q)
        print(f"{name:22}{x:12.2f}{y:12.2f}{y - x:12.2f}")
    added_p50 = pct(rules_enter, 50) - pct(none_enter, 50)
    print(f"target: < 200 us added p50 (0.2 ms); Enter with 50 rules adds {added_p50:.1f} us; "
          f"searches stopped by the {TIMEOUT_MS:g} ms limit: {timeouts}; load average {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()
