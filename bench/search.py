"""Search latency on an index the size of 10,000 session-hours (prints figures).

The corpus is SYNTHETIC: a load generator, not real sessions. Each
session-hour gets ``--docs-per-hour`` documents (default 400: ~120 typed
lines and ~280 screen text items, what our text stage stores for a busy
admin hour after de-duplication), 3-12 words each, drawn from a Zipf
distribution over a 40,000-word vocabulary, so a few words are very common
and most are rare, as in real text. Sessions are spread over 10 users, 50
connections and one year.

Queries are what auditors type: a rare word, a mid-frequency word, two
words, a phrase, a prefix, and the same with a user or time filter. We print
p50/p95/p99 per kind and overall (target: p95 < 50 ms).

    .venv/bin/python bench/search.py                 # 10,000 session-hours
    .venv/bin/python bench/search.py --hours 500     # a quick run
    .venv/bin/python bench/search.py --db /tmp/idx.db --reuse   # keep the built index
"""

from __future__ import annotations

import argparse
import random
import statistics
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from sqlalchemy import create_engine, text  # noqa: E402

from gui_recorder.index import SearchIndex  # noqa: E402
from gui_recorder.index.documents import epoch_ms  # noqa: E402

VOCABULARY = 40_000
T0 = datetime(2026, 1, 1, tzinfo=UTC)
SYLLABLES = ["ka", "lo", "mi", "ne", "ru", "ta", "vo", "shi", "an", "er", "ol", "is", "pra", "dex", "mon", "tel"]


def vocabulary(rng: random.Random) -> list[str]:
    words: set[str] = set()
    while len(words) < VOCABULARY:
        words.add("".join(rng.choice(SYLLABLES) for _ in range(rng.randint(1, 4))))
    return sorted(words)


def build(index: SearchIndex, hours: int, docs_per_hour: int, seed: int) -> tuple[list[str], list[float]]:
    rng = random.Random(seed)
    words = vocabulary(rng)
    rng.shuffle(words)
    # Zipf weights: rank r has weight 1/r.
    cumulative, total = [], 0.0
    for rank in range(1, len(words) + 1):
        total += 1.0 / rank
        cumulative.append(total)
    started = time.perf_counter()
    engine = index.engine
    batch: list[dict] = []
    insert = text(
        "INSERT INTO text_documents (session_id, user, connection, protocol, started_ms, at_ms, offset_ms,"
        " source, text, x, y, w, h, confidence, first_seen_ms, last_seen_ms) VALUES (:session_id, :user,"
        " :connection, :protocol, :started_ms, :at_ms, :offset_ms, :source, :text, :x, :y, :w, :h,"
        " :confidence, :first_seen_ms, :last_seen_ms)")
    with engine.begin() as conn:
        for hour in range(hours):
            start = T0 + timedelta(minutes=rng.randrange(365 * 24 * 60))
            started_ms = epoch_ms(start)
            user, connection = f"user{rng.randrange(10)}", f"conn{rng.randrange(50)}"
            sampled = rng.choices(words, cum_weights=cumulative, k=docs_per_hour * 8)
            pos = 0
            for d in range(docs_per_hour):
                n = rng.randint(3, 12)
                body = " ".join(sampled[pos:pos + n])
                pos += n
                offset = rng.randrange(3_600_000)
                typed = d % 10 < 3
                batch.append({
                    "session_id": f"s{hour}", "user": user, "connection": connection, "protocol": "rdp",
                    "started_ms": started_ms, "at_ms": started_ms + offset, "offset_ms": offset,
                    "source": "typed" if typed else "screen", "text": body,
                    "x": None if typed else 10, "y": None if typed else 20, "w": None if typed else 300,
                    "h": None if typed else 14, "confidence": None if typed else 90.0,
                    "first_seen_ms": offset, "last_seen_ms": offset + 5000,
                })
            if len(batch) >= 50_000:
                conn.execute(insert, batch)
                batch.clear()
                done = hour + 1
                rate = done / (time.perf_counter() - started)
                print(f"  built {done}/{hours} session-hours ({rate:.0f}/s)", flush=True)
        if batch:
            conn.execute(insert, batch)
        conn.execute(text("INSERT INTO text_fts(text_fts) VALUES ('optimize')"))
    print(f"built {hours * docs_per_hour:,} documents in {time.perf_counter() - started:.0f} s")
    return words, cumulative


def queries(words: list[str], rng: random.Random, n: int) -> list[tuple[str, str, dict]]:
    # Ranks: 'mid' words match ~0.1-1 % of documents, 'rare' ones a handful.
    out = []
    for _ in range(n):
        rare = words[rng.randrange(5000, len(words))]
        mid = words[rng.randrange(50, 500)]
        other = words[rng.randrange(500, 5000)]
        since = T0 + timedelta(days=rng.randrange(300))
        out += [
            ("rare word", rare, {}),
            ("mid word", mid, {}),
            ("two words", f"{mid} {other}", {}),
            ("phrase", f'"{mid} {other}"', {}),
            ("prefix", rare[:4] + "*", {}),
            ("word+user", other, {"user": f"user{rng.randrange(10)}"}),
            ("word+week", other, {"since": since, "until": since + timedelta(days=7)}),
        ]
    rng.shuffle(out)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--hours", type=int, default=10_000)
    parser.add_argument("--docs-per-hour", type=int, default=400)
    parser.add_argument("--queries", type=int, default=60, help="rounds of the 7 query kinds")
    parser.add_argument("--db", type=Path, default=Path("var/bench-search.db"))
    parser.add_argument("--reuse", action="store_true", help="keep an index already built at --db")
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()

    args.db.parent.mkdir(parents=True, exist_ok=True)
    if args.db.exists() and not args.reuse:
        for suffix in ("", "-wal", "-shm"):
            Path(str(args.db) + suffix).unlink(missing_ok=True)
    index = SearchIndex(create_engine(f"sqlite:///{args.db.resolve()}"))
    with index.engine.connect() as conn:
        existing = conn.execute(text("SELECT count(*) FROM text_documents")).scalar()
    rng = random.Random(args.seed)
    if existing:
        print(f"reusing {existing:,} documents in {args.db}")
        words = vocabulary(rng)
        rng.shuffle(words)
    else:
        words, _ = build(index, args.hours, args.docs_per_hour, args.seed)
    size_mb = sum(Path(str(args.db) + s).stat().st_size for s in ("", "-wal") if Path(str(args.db) + s).exists())
    print(f"index: {args.db} {size_mb / 1e6:,.0f} MB")

    timings: dict[str, list[float]] = {}
    counts: dict[str, list[int]] = {}
    work = queries(words, random.Random(args.seed + 1), args.queries)
    for _, q, kw in work[:20]:
        index.search(q, **kw)  # warm the page cache, as a running server is
    for kind, q, kw in work:
        t = time.perf_counter()
        hits = index.search(q, limit=50, **kw)
        timings.setdefault(kind, []).append((time.perf_counter() - t) * 1000)
        counts.setdefault(kind, []).append(len(hits))

    def pct(values: list[float], p: float) -> float:
        values = sorted(values)
        return values[min(len(values) - 1, int(round(p / 100 * (len(values) - 1))))]

    print(f"{'query kind':<12} {'n':>4} {'p50 ms':>8} {'p95 ms':>8} {'p99 ms':>8} {'hits (mean)':>12}")
    for kind, values in timings.items():
        print(f"{kind:<12} {len(values):>4} {pct(values, 50):>8.1f} {pct(values, 95):>8.1f} {pct(values, 99):>8.1f}"
              f" {statistics.mean(counts[kind]):>12.1f}")
    every = [v for values in timings.values() for v in values]
    p95 = pct(every, 95)
    print(f"{'all':<12} {len(every):>4} {pct(every, 50):>8.1f} {p95:>8.1f} {pct(every, 99):>8.1f}")
    print(f"p95 search latency: {p95:.1f} ms (target < 50 ms): {'MET' if p95 < 50 else 'NOT MET'}")
    index.close()


if __name__ == "__main__":
    main()
