"""The README's benchmark tables, from the JSON files bench_workloads.py writes.

    python benchmarks/readme_tables.py benchmarks/results/part1.json [part2.json ...]

Prints three markdown tables: every float32 row on one thread; the training steps on one
thread in float64 (W_char and W_mid, the workloads of the float64 target) and on two
threads in float32; and rnnx's two-thread speed over its one-thread speed where both were
measured in the same rounds (W_mid and W_big, the workloads of the scaling target). Rows
whose configuration was not run are left out; nothing is measured here.
"""

import argparse
import json

HEADER = ("| workload | cell | float | mode | threads | rnnx ms | rnnx % of peak | PyTorch ms "
          "| NumPy ms | speed-up vs PyTorch | speed-up vs NumPy |\n"
          "|---|---|---|---|---:|---:|---:|---:|---:|---:|---:|")
ORDER = ["W_tiny", "W_char", "W_mid", "W_big", "W_seq1"]
CELLS = ["rnn", "gru", "lstm"]


def ms(seconds):
    v = seconds * 1e3
    return f"{v:.3g}" if v < 100 else f"{v:.0f}"


def pct(p):  # p is in percent already
    return f"{p:.1f}%" if p < 1 else f"{p:.0f}%"


def row(r):
    im = r["impls"]
    x, t, n = im["rnnx"], im.get("torch", {}), im.get("numpy", {})
    cells = [r["workload"], r["cell"], r["dtype"].replace("float", ""), r["mode"],
             str(r["threads"]), ms(x["median_s"]), pct(x["pct_peak"])]
    for other in (t, n):
        cells.append(ms(other["median_s"]) if other.get("median_s") else "-")
    for other in (t, n):
        cells.append(f"{other['median_s'] / x['median_s']:.2f}x" if other.get("median_s") else "-")
    return "| " + " | ".join(cells) + " |"


SCALING_HEADER = ("| workload | cell | mode | rnnx ms, 1 thread | rnnx ms, 2 threads "
                  "| speed-up (median of the rounds' ratios) |\n|---|---|---|---:|---:|---:|")


def scaling_row(r):
    one, two = r["impls"]["rnnx 1t"], r["impls"]["rnnx"]
    return (f"| {r['workload']} | {r['cell']} | {r['mode']} | {ms(one['median_s'])} "
            f"| {ms(two['median_s'])} | {r['thread_scaling']:.2f}x |")


def key(r):
    w = r["workload"]  # --quick's workloads (not in ORDER) go last
    return (ORDER.index(w) if w in ORDER else len(ORDER), w, r["mode"] != "forward",
            CELLS.index(r["cell"]))


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("json", nargs="+")
    args = ap.parse_args(argv)
    results = []
    for path in args.json:
        with open(path) as f:
            results += [r for r in json.load(f)["results"] if r["impls"]["rnnx"].get("median_s")]
    first = sorted((r for r in results if r["dtype"] == "float32" and r["threads"] == 1), key=key)
    second = sorted((r for r in results if r["mode"] == "train" and (
        (r["dtype"] == "float64" and r["threads"] == 1 and r["workload"] in ("W_char", "W_mid")) or
        (r["dtype"] == "float32" and r["threads"] == 2))),
        key=lambda r: (r["threads"], r["dtype"]) + key(r))
    print("float32, one thread:\n")
    print(HEADER)
    print("\n".join(row(r) for r in first))
    print("\nfloat32 training step on two threads, and float64 training step on one thread:\n")
    print(HEADER)
    print("\n".join(row(r) for r in second))
    third = sorted((r for r in results if r["threads"] == 2 and r["dtype"] == "float32"
                    and r["workload"] in ("W_mid", "W_big") and r.get("thread_scaling")),
                   key=key)
    if third:
        print("\nrnnx on two threads against rnnx on one thread, float32, the two timed in "
              "the same rounds:\n")
        print(SCALING_HEADER)
        print("\n".join(scaling_row(r) for r in third))


if __name__ == "__main__":
    main()
