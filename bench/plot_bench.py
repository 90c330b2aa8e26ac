#!/usr/bin/env python3
"""Tables and a plot from the JSON output of ecq's CPU benchmarks.

usage: python3 bench/plot_bench.py PLOT.svg RESULT.json [RESULT.json ...] > tables.md

RESULT.json files come from ecq_bench_decode / _encode / _gemv run with
--benchmark_out=RESULT.json --benchmark_out_format=json (repetitions are
fine: the median of the repetitions is used). The script writes
  * Markdown tables to stdout, one per benchmark group ("decode/a256",
    "codes/real4", "encode/a16", "gemv/real", ...), with the ratios the
    performance targets are stated in: throughput against the fastest
    htscodecs order-0 mode of the group and coded size against the smallest,
    and for GEMV the fused rate against decode-only and the time against the
    plain 4-bit and fp32 GEMVs;
  * PLOT.svg, one horizontal bar chart of items/s per group, drawn by hand
    (no plotting library needed).
Benchmarks that were skipped (error_occurred) are left out.
"""
import json
import statistics
import sys
from collections import OrderedDict


def load(paths):
    """{run_name: record} with the median items/s etc. of the repetitions."""
    runs = OrderedDict()
    context = {}
    for path in paths:
        with open(path) as f:
            data = json.load(f)
        context.update(data.get("context", {}))
        for b in data["benchmarks"]:
            if b.get("error_occurred"):
                continue
            name = b.get("run_name", b["name"])
            if b.get("run_type") == "aggregate":
                if b.get("aggregate_name") == "median":
                    runs.setdefault(name, {"reps": [], "median": None})["median"] = b
                continue
            runs.setdefault(name, {"reps": [], "median": None})["reps"].append(b)
    out = OrderedDict()
    for name, r in runs.items():
        reps = r["reps"]
        if reps:
            rec = dict(reps[0])
            for key in ("items_per_second", "bytes_per_second", "cpu_time", "real_time"):
                if key in rec:
                    rec[key] = statistics.median(x[key] for x in reps)
            rec["repetitions_used"] = len(reps)
        elif r["median"] is not None:
            rec = dict(r["median"])
            rec["repetitions_used"] = rec.get("repetitions", 1)
        else:
            continue
        out[name] = rec
    return out, context


def group_of(name):
    parts = name.split("/")
    return "/".join(parts[:2]), "/".join(parts[2:])


def grouped(runs):
    """{group: {entry: record}}, both sorted by name (repetitions may have run in random order)."""
    groups = {}
    for name, rec in runs.items():
        g, entry = group_of(name)
        groups.setdefault(g, {})[entry] = rec
    return OrderedDict((g, OrderedDict(sorted(groups[g].items()))) for g in sorted(groups))


def size_of(rec):
    for key in ("coded_bits_per_symbol", "bits_per_weight"):
        if key in rec:
            return rec[key]
    return None


def giga(x):
    return "%.3f" % (x / 1e9)


def table_codec(group, entries):
    hts = {e: r for e, r in entries.items() if e.startswith("htscodecs")}
    fastest = max(hts.items(), key=lambda kv: kv[1]["items_per_second"]) if hts else None
    smallest = min((size_of(r) for r in hts.values() if size_of(r) is not None), default=None)
    lines = ["#### %s" % group, ""]
    head = "| benchmark | kernel | G items/s | coded bits/item |"
    rule = "|---|---|---:|---:|"
    if fastest:
        head += " × fastest htscodecs (%s) | size vs smallest htscodecs |" % fastest[0]
        rule += "---:|---:|"
    lines += [head, rule]
    for e, r in entries.items():
        row = "| %s | %s | %s | %s |" % (e, r.get("label", ""), giga(r["items_per_second"]),
                                         "%.4f" % size_of(r) if size_of(r) is not None else "")
        if fastest:
            row += " %.2f |" % (r["items_per_second"] / fastest[1]["items_per_second"])
            row += (" %+.2f %% |" % (100.0 * (size_of(r) / smallest - 1.0))) if smallest and size_of(r) else " |"
        lines.append(row)
    return lines


def table_gemv(group, entries):
    lines = ["#### %s" % group, "",
             "| benchmark | kernel | ms per GEMV (CPU) | G weights/s | bits/weight | matrix MB |"
             " fused / decode-only | time / q4_avx512 | time / fp32_avx512 |",
             "|---|---|---:|---:|---:|---:|---:|---:|---:|"]
    q4 = entries.get("q4_avx512")
    fp32 = entries.get("fp32_avx512")
    for e, r in entries.items():
        ratio = ""
        if e.startswith("ecq_fused_"):
            other = entries.get("ecq_decode_only_" + e[len("ecq_fused_"):])
            if other:
                ratio = "%.0f %%" % (100.0 * r["items_per_second"] / other["items_per_second"])
        lines.append("| %s | %s | %.2f | %s | %.3f | %.1f | %s | %s | %s |" % (
            e, r.get("label", ""), r["cpu_time"], giga(r["items_per_second"]), r.get("bits_per_weight", 0),
            r.get("matrix_MB", 0), ratio,
            "%.2f" % (r["cpu_time"] / q4["cpu_time"]) if q4 else "",
            "%.2f" % (r["cpu_time"] / fp32["cpu_time"]) if fp32 else ""))
    return lines


def svg(groups, path):
    bar_h, gap, left, width, right = 16, 4, 330, 520, 90
    y = 30
    body = []
    for g, entries in groups.items():
        vmax = max(r["items_per_second"] for r in entries.values())
        body.append('<text x="10" y="%d" font-weight="bold">%s (items/s)</text>' % (y, g))
        y += 10
        for e, r in entries.items():
            v = r["items_per_second"]
            w = max(1.0, width * v / vmax)
            color = "#c44e52" if e.startswith("htscodecs") else (
                "#8c8c8c" if ("core_" in e or "fp32" in e or "q4_" in e) else "#4c72b0")
            body.append('<text x="%d" y="%d" text-anchor="end" font-size="11">%s</text>' % (left - 6, y + 12, e))
            body.append('<rect x="%d" y="%d" width="%.1f" height="%d" fill="%s"/>' % (left, y, w, bar_h, color))
            body.append('<text x="%.1f" y="%d" font-size="11">%.2f G</text>' % (left + w + 4, y + 12, v / 1e9))
            y += bar_h + gap
        y += 24
    legend = ('<text x="10" y="%d" font-size="11">blue: ecq; red: htscodecs; grey: baselines '
              '(core decoder, fp32 and 4-bit GEMV)</text>' % y)
    with open(path, "w") as f:
        f.write('<svg xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" font-family="sans-serif" '
                'font-size="12">\n' % (left + width + right, y + 20))
        f.write('<rect width="100%" height="100%" fill="white"/>\n')
        f.write("\n".join(body + [legend]))
        f.write("\n</svg>\n")


def main(argv):
    if len(argv) < 3:
        sys.stderr.write(__doc__)
        return 2
    runs, context = load(argv[2:])
    groups = grouped(runs)
    print("Machine: %s (family %s, model %s), %s; compiler %s; date %s." % (
        context.get("cpu_model", "?"), context.get("cpu_family", "?"), context.get("cpu_model_number", "?"),
        "%s CPUs" % context.get("num_cpus", "?"), context.get("compiler", "?"), context.get("date", "?")))
    print()
    for g, entries in groups.items():
        lines = table_gemv(g, entries) if g.startswith("gemv") else table_codec(g, entries)
        print("\n".join(lines))
        print()
    svg(groups, argv[1])
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
