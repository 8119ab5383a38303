#!/usr/bin/env python3
"""summarize.py: turn the results.tsv written by bench/run.sh into tables.

Usage: bench/summarize.py RESULTS.tsv [--baseline gomem]
       bench/summarize.py --gctrace LABEL=FILE...

The second form reads GODEBUG=gctrace=1 output (stderr of Go programs and
of gomem programs alike: both print Go's line, matched here by one regular
expression written from Go's documentation) and prints, per file, the
cycles, their stop-the-world pauses (sweep termination + mark termination
clock), the concurrent mark clock and the heap sizes.

Each row of RESULTS.tsv is one run:
    bench  config  variant  rep  status  wall_s  rss_kib  metrics
where status is "ok" or a failure word, and metrics is a space-separated
list of key=value pairs taken from the program's RESULT line.

Prints Markdown tables (readable as plain text too): medians over the
repetitions, the min-max spread of wall time, and ratios to the baseline
variant (gomem by default): ratio = variant / baseline, so > 1 means the
variant is slower or bigger than the baseline. "CPU s" is user + system
time of the whole process (collector threads included). "load" is the median 1-minute
load average when the runs started: above 2 (the core count) other work
competed for the CPU. Ends with the project's
targets checked against the medians when the needed rows exist.
"""
import collections
import re
import statistics
import sys

VARIANT_ORDER = ["gomem", "go", "boehm", "malloc", "mimalloc", "jemalloc"]
BENCH_ORDER = ["gcbench", "binarytrees", "allocbench", "pauseprobe",
               "poolbench", "finalbench"]


def load(path):
    runs = []
    with open(path) as f:
        for line in f:
            line = line.rstrip("\n")
            if not line or line.startswith("#"):
                continue
            parts = line.split("\t")
            while len(parts) < 8:
                parts.append("")
            bench, config, variant, rep, status, wall, rss, metrics = parts[:8]
            m = {}
            for kv in metrics.split():
                if "=" in kv:
                    k, v = kv.split("=", 1)
                    m[k] = v
            runs.append(
                dict(
                    bench=bench,
                    config=config,
                    variant=variant,
                    rep=rep,
                    status=status,
                    wall=float(wall) if wall else None,
                    rss=float(rss) / 1024 if rss else None,  # MiB
                    m=m,
                )
            )
    return runs


def order_key(v):
    return (VARIANT_ORDER.index(v) if v in VARIANT_ORDER else 99, v)


def med(values):
    values = [v for v in values if v is not None]
    return statistics.median(values) if values else None


def metric(runs, key):
    out = []
    for r in runs:
        try:
            out.append(float(r["m"][key]))
        except (KeyError, ValueError):
            pass
    return med(out)


def fmt(x, digits=2):
    if x is None:
        return "-"
    if abs(x) >= 1000:
        return f"{x:.0f}"
    return f"{x:.{digits}f}"


def ratio(x, base):
    if x is None or base is None or base == 0:
        return "-"
    return f"{x / base:.2f}"


def table(header, rows):
    widths = [len(h) for h in header]
    for row in rows:
        for i, cell in enumerate(row):
            widths[i] = max(widths[i], len(cell))
    line = lambda cells: "| " + " | ".join(
        c.ljust(widths[i]) if i == 0 else c.rjust(widths[i])
        for i, c in enumerate(cells)
    ) + " |"
    print(line(header))
    print("|" + "|".join(("-" * (w + 1)) + ("-" if i == 0 else ":")
                         for i, w in enumerate(widths)) + "|")
    for row in rows:
        print(line(row))
    print()


def group(runs):
    """{(bench, config): {variant: [runs]}} keeping first-seen config order."""
    g = collections.OrderedDict()
    for r in runs:
        g.setdefault((r["bench"], r["config"]), {}).setdefault(
            r["variant"], []
        ).append(r)
    return g


def ok_runs(rs):
    return [r for r in rs if r["status"] == "ok"]


def status_cell(rs):
    bad = [r["status"] for r in rs if r["status"] != "ok"]
    n = len(rs) - len(bad)
    if not bad:
        return str(n)
    return f"{n} ({len(bad)} {','.join(sorted(set(bad)))})"


def wall_rss_table(variants, base, extra=()):
    """extra: list of (column title, metric key, digits)."""
    bo = ok_runs(variants.get(base, []))
    bwall = med(r["wall"] for r in bo)
    brss = med(r["rss"] for r in bo)
    header = ["variant", "runs", "wall s", "min-max s", "CPU s", "peak RSS MiB",
              f"wall/{base}", f"RSS/{base}"] + [e[0] for e in extra] + [
                  "load"]
    rows = []
    for v in sorted(variants, key=order_key):
        rs = variants[v]
        ok = ok_runs(rs)
        walls = [r["wall"] for r in ok if r["wall"] is not None]
        w = med(walls)
        rss = med(r["rss"] for r in ok)
        spread = f"{min(walls):.2f}-{max(walls):.2f}" if walls else "-"
        row = [v, status_cell(rs), fmt(w), spread, fmt(metric(ok, "cpu_s")),
               fmt(rss, 1),
               ratio(w, bwall), ratio(rss, brss)]
        for _, key, digits in extra:
            row.append(fmt(metric(ok, key), digits))
        row.append(fmt(metric(rs, "load1"), 1))
        rows.append(row)
    table(header, rows)


def alloc_tables(groups, base):
    configs = [(c, vs) for (b, c), vs in groups.items() if b == "allocbench"]
    if not configs:
        return
    variants = sorted({v for _, vs in configs for v in vs}, key=order_key)
    print("### allocbench: ns per allocation (median; x = ratio to "
          f"{base})\n")
    rows = []
    for c, vs in configs:
        b = metric(ok_runs(vs.get(base, [])), "ns_per_alloc")
        row = [c]
        for v in variants:
            rs = vs.get(v, [])
            x = metric(ok_runs(rs), "ns_per_alloc")
            cell = fmt(x)
            if x is not None and b and v != base:
                cell += f" x{x / b:.2f}"
            if rs and len(ok_runs(rs)) < len(rs):
                cell += " !"
            row.append(cell)
        rows.append(row)
    table(["config"] + variants, rows)
    print("### allocbench: peak RSS MiB (median)\n")
    rows = []
    for c, vs in configs:
        rows.append([c] + [fmt(med(r["rss"] for r in ok_runs(vs.get(v, []))), 1)
                           for v in variants])
    table(["config"] + variants, rows)


PAUSE_EXTRA = [
    ("max gap ms", "max_gap_ms", 2),
    ("p99 gap us", "p99_gap_us", 2),
    ("p99.9 gap us", "p999_gap_us", 2),
    ("gaps>1ms", "gaps_over_1ms", 0),
    ("GCs", "gcs", 0),
    ("GC max pause ms", "gc_max_pause_ms", 2),
]

POOL_EXTRA = [
    ("ns/op", "ns_per_op", 2),
    ("GCs", "gcs", 0),
]

FINAL_EXTRA = [
    ("set ns/op", "set_ns_per_op", 1),
    ("total ns/op", "total_ns_per_op", 1),
    ("GCs", "gcs", 0),
]


def targets(groups, base):
    print("### Targets (medians)\n")
    found = False

    def get(bench, prefix, variant):
        for (b, c), vs in groups.items():
            if b == bench and c.startswith(prefix) and variant in vs:
                return c, ok_runs(vs[variant])
        return None, []

    c, g = get("binarytrees", "N=21", "gomem")
    _, bo = get("binarytrees", "N=21", "boehm")
    if g and bo:
        found = True
        gw, bw = med(r["wall"] for r in g), med(r["wall"] for r in bo)
        gr, br = med(r["rss"] for r in g), med(r["rss"] for r in bo)
        print(f"- binary-trees N=21 wall <= 0.7x Boehm: gomem {gw:.2f} s vs "
              f"Boehm {bw:.2f} s = {gw / bw:.2f}x -> "
              f"{'MET' if gw <= 0.7 * bw else 'NOT MET'}")
        print(f"- binary-trees N=21 peak RSS <= Boehm: gomem {gr:.1f} MiB vs "
              f"Boehm {br:.1f} MiB = {gr / br:.2f}x -> "
              f"{'MET' if gr <= br else 'NOT MET'}")
    c, g = get("gcbench", "depth=16", "gomem")
    _, bo = get("gcbench", "depth=16", "boehm")
    if g and bo:
        found = True
        gw, bw = med(r["wall"] for r in g), med(r["wall"] for r in bo)
        print(f"- GCBench wall <= Boehm: gomem {gw:.2f} s vs Boehm {bw:.2f} s "
              f"= {gw / bw:.2f}x -> {'MET' if gw <= bw else 'NOT MET'}")
    for size in ("16", "32", "64"):
        c, g = get("allocbench", f"t=1 size={size} ", "gomem")
        if g:
            found = True
            ns = metric(g, "ns_per_alloc")
            print(f"- 1 thread {size} B short-lived <= 12 ns/alloc: gomem "
                  f"{ns:.2f} ns -> {'MET' if ns <= 12 else 'NOT MET'}")
    # the concurrent collector's targets, at 512 MiB and 1 GiB live
    for mib in ("512", "1024"):
        c, g = get("pauseprobe", f"mib={mib} ", "gomem")
        _, go = get("pauseprobe", f"mib={mib} ", "go")
        if not g:
            continue
        found = True
        pause = metric(g, "gc_max_pause_ms")
        gap = metric(g, "max_gap_ms")
        rss = med(r["rss"] for r in g)
        print(f"- pauseprobe {mib} MiB: GC max pause <= 1 ms: gomem "
              f"{pause:.2f} ms -> {'MET' if pause <= 1 else 'NOT MET'}")
        print(f"- pauseprobe {mib} MiB: max mutator gap <= 10 ms: gomem "
              f"{gap:.1f} ms -> {'MET' if gap <= 10 else 'NOT MET'}")
        print(f"- pauseprobe {mib} MiB: peak RSS <= 2.2x live: gomem "
              f"{rss:.0f} MiB = {rss / int(mib):.2f}x -> "
              f"{'MET' if rss <= 2.2 * int(mib) else 'NOT MET'}")
        if go:
            gt, ot = metric(g, "total_ms"), metric(go, "total_ms")
            print(f"- pauseprobe {mib} MiB: total time <= Go's: gomem "
                  f"{gt / 1000:.2f} s vs Go {ot / 1000:.2f} s = "
                  f"{gt / ot:.2f}x -> {'MET' if gt <= ot else 'NOT MET'}")
    if not found:
        print("- no gomem runs (or no matching Boehm runs) at the target "
              "sizes: nothing to check")
    print()


# Go's gctrace line (runtime/extern.go documents it; runtime/mgc.go prints it)
GCTRACE_RE = re.compile(
    r"^gc (?P<n>\d+) @(?P<at>[\d.]+)s (?P<pct>\d+)%: "
    r"(?P<stw1>[\d.]+)\+(?P<mark>[\d.]+)\+(?P<stw2>[\d.]+) ms clock, "
    r"(?P<c1>[\d.]+)\+(?P<assist>[\d.]+)/(?P<bg>[\d.]+)/(?P<idle>[\d.]+)"
    r"\+(?P<c2>[\d.]+) ms cpu, "
    r"(?P<h0>\d+)->(?P<h1>\d+)->(?P<h2>\d+) MB, (?P<goal>\d+) MB goal, "
    r"(?P<stacks>\d+) MB stacks, (?P<globals>\d+) MB globals, "
    r"(?P<procs>\d+) P(?P<forced> \(forced\))?$")


def gctrace_tables(args):
    rows = []
    for arg in args:
        label, _, path = arg.partition("=")
        cycles = []
        with open(path or label) as f:
            for line in f:
                m = GCTRACE_RE.match(line.rstrip("\n"))
                if m:
                    cycles.append({k: float(v) if v and k != "forced" else v
                                   for k, v in m.groupdict().items()})
        if not cycles:
            rows.append([label, "0"] + [""] * 6)
            continue
        pauses = [c["stw1"] + c["stw2"] for c in cycles]
        marks = [c["mark"] for c in cycles]
        rows.append([
            label, str(len(cycles)), fmt(max(pauses), 3),
            fmt(statistics.median(pauses), 3), fmt(sum(pauses), 3),
            fmt(max(marks), 1),
            "%d" % max(c["h1"] for c in cycles),
            "%d" % max(c["h2"] for c in cycles),
        ])
    table(["trace", "cycles", "max pause ms", "median pause ms",
           "total pause ms", "max mark ms", "max heap MB", "max live MB"],
          rows)
    return 0


def main(argv):
    if len(argv) >= 2 and argv[1] == "--gctrace":
        return gctrace_tables(argv[2:])
    if len(argv) < 2:
        print(__doc__, file=sys.stderr)
        return 2
    base = "gomem"
    if "--baseline" in argv:
        base = argv[argv.index("--baseline") + 1]
    runs = load(argv[1])
    groups = group(runs)
    with open(argv[1]) as f:
        for line in f:
            if line.startswith("# ") and "\t" not in line:
                print(line[2:].rstrip() + "  ")
    print()
    for bench in BENCH_ORDER:
        if bench == "allocbench":
            alloc_tables(groups, base)
            continue
        for (b, c), variants in groups.items():
            if b != bench:
                continue
            print(f"### {bench} {c}\n")
            extra = ()
            if bench == "pauseprobe":
                extra = PAUSE_EXTRA
            elif bench == "poolbench":
                extra = POOL_EXTRA
            elif bench == "finalbench":
                extra = FINAL_EXTRA
            wall_rss_table(variants, base, extra)
    targets(groups, base)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
