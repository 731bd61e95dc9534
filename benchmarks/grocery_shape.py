"""A grocery-shaped shop, the shape where `recsys batch evaluate` used to die with a segmentation fault inside BLAS:
about 2,500 customers, 150k baskets and some 70k products sold, so the memory plan picks EASE on 20,000
products in float64 (a 3.2 GB Gram matrix, past the ~2 GiB at which some OpenBLAS kernels overflow). Runs the
evaluation as a user does, and reports whether it finished, the plan it chose, time and peak memory, and the
table's headline rows. Prints a table and writes JSON.

    .venv/bin/python -m benchmarks.grocery_shape [--work /tmp/grocery] [--out benchmarks/results/grocery_shape.json]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import tempfile
from pathlib import Path
from typing import Any

import pandas as pd

from benchmarks.scale import shop, timed_recsys
from common.data.synthetic import SyntheticSpec

SPEC = SyntheticSpec(customers=2_500, products=110_000, lines=560_000, seed=24, popularity_exponent=0.8)
HEADLINE = ("repeat", "tifu", "ease", "hybrid", "ranker")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--work", type=Path, default=Path(tempfile.gettempdir()) / "recsys-grocery")
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results/grocery_shape.json"))
    args = parser.parse_args()
    args.work.mkdir(parents=True, exist_ok=True)
    data = shop(SPEC, args.work)
    lines = pd.read_csv(data / "dataset_sample_1.csv", usecols=["PEDIDO", "COD_PRODUCTO", "UUID_CLIENTE_CONSUMIDOR"])
    shape = {"lines": len(lines), "baskets": int(lines["PEDIDO"].nunique()),
             "products": int(lines["COD_PRODUCTO"].nunique()),
             "customers": int(lines["UUID_CLIENTE_CONSUMIDOR"].nunique())}
    print(f"shop: {shape}", flush=True)
    env = os.environ | {"RECSYS_RUN_DIR": str(args.work / "run"), "RECSYS_ARTIFACTS_DIR": str(args.work / "art")}
    result = timed_recsys(["batch", "evaluate", "--data", str(data), "--out", str(args.work / "evaluation")], env,
                          args.work / "evaluate.log")
    output = result.pop("output")
    plan = re.search(r"^memory plan: .*$", output, re.MULTILINE)
    table: dict[str, Any] = {}
    evaluation = args.work / "evaluation" / "evaluation.json"
    if result["exit_code"] == 0 and evaluation.exists():
        rows = json.loads(evaluation.read_text())["table"]
        table = {variant: {name: round(metrics["ndcg@10"], 4) for name, metrics in models.items()
                           if name in HEADLINE} for variant, models in rows.items()}
    report = {"machine": platform.platform(), "shape": shape, "exit_code": result["exit_code"],
              "seconds": round(result["seconds"], 1), "peak_rss_mib": round(result["peak_rss_mib"]),
              "memory_plan": plan.group(0) if plan else None, "ndcg@10": table,
              "last_lines": output.strip().splitlines()[-3:] if result["exit_code"] else []}
    print(f"\n| exit code | seconds | peak RSS | memory plan |\n|---:|---:|---:|---|\n| {report['exit_code']} | "
          f"{report['seconds']:,} | {report['peak_rss_mib']:,} MiB | {report['memory_plan']} |")
    for variant, rows in table.items():
        print(f"{variant}: " + ", ".join(f"{name} {value}" for name, value in rows.items()))
    if result["exit_code"]:
        print("\n".join(report["last_lines"]))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2))
    print(f"written to {args.out}")


if __name__ == "__main__":
    main()
