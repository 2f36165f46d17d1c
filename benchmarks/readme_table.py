"""The README's speed table, from two ``bench_suite.py`` JSON results.

    python benchmarks/readme_table.py benchmarks/results/bench_suite.json \
        benchmarks/results/bench_suite_rerun.json

Prints a markdown table of selected cells: every float64 cell of c1 and c3,
and for each speed target of issue 4 (section 2) the cell that came closest
to missing it in either run. Ratio columns show the first run's value, and
``first / second`` where the README compares the two runs.
"""

import json
import sys

LABELS = {"c1": "c1: 100 features, (100,), 2 classes",
          "r1": "r1: regressor, 100 features, (100,)",
          "c2": "c2: 100 features, (256, 256)",
          "c3": "c3: 784 features, (256, 256), 10 classes"}
ORDER = {name: i for i, name in enumerate(LABELS)}
GROUPS = (("c1", "r1"), ("c2", "c3"))
BATCHES = (16, 64, 256, 1024)


def cells(result):
    """``{(config, dtype, batch): row}`` of one run."""
    return {(cfg, row["dtype"], row["batch_size"]): row
            for cfg, rows in result["results"].items() for row in rows}


def torch_ratio(row):
    """Torch's time over ours with torch's faster thread setting: what the
    targets compare with (``bench_suite.evaluate_targets``)."""
    return min(row["torch_1_over_ours"], row["torch_2_over_ours"])


def selected(runs):
    keys = {k for k in runs[0] if (k[0], k[1]) in (("c1", "float64"), ("c3", "float64"))}
    for group in GROUPS:
        for batch in BATCHES:
            for ratio in (lambda r: r["sklearn_over_ours"], torch_ratio):
                for run in runs:
                    candidates = [k for k in run if k[0] in group and k[2] == batch]
                    if candidates:
                        keys.add(min(candidates, key=lambda k: ratio(run[k])))
    return sorted((k for k in keys if all(k in run for run in runs)),
                  key=lambda k: (ORDER[k[0]], k[1] != "float64", k[2]))


def floor(row):
    """Our time over the row's products floor (``bench_suite.ours_over_floor``)."""
    return row["ours"]["median"] / row["products_floor_epoch_s"]


def fmt(x):
    return f"{x:.2f}x" if x < 10 else f"{x:.1f}x"


def table(first, second):
    runs = [cells(first), cells(second)]
    lines = ["| config | dtype | batch | ours s | sklearn / ours | sklearn ×1 / ours "
             "| torch ×1 / ours | torch ×2 / ours | ours / floor |",
             "|---|---|---|---|---|---|---|---|---|"]
    last = None
    for key in selected(runs):
        x, y = (run[key] for run in runs)
        cfg, dtype, batch = key
        lines.append(
            f"| {LABELS[cfg] if cfg != last else ''} | {dtype} | {batch} "
            f"| {x['ours']['median']:.3f} "
            f"| {fmt(x['sklearn_over_ours'])} / {fmt(y['sklearn_over_ours'])} "
            f"| {fmt(x['sklearn_1_over_ours'])} | {fmt(x['torch_1_over_ours'])} "
            f"| {fmt(x['torch_2_over_ours'])} / {fmt(y['torch_2_over_ours'])} "
            f"| {floor(x):.2f} / {floor(y):.2f} |")
        last = cfg
    return "\n".join(lines)


def main(argv=None):
    argv = sys.argv[1:] if argv is None else argv
    if len(argv) != 2:
        raise SystemExit("usage: readme_table.py FIRST.json SECOND.json")
    with open(argv[0]) as f, open(argv[1]) as g:
        print(table(json.load(f), json.load(g)))


if __name__ == "__main__":
    main()
