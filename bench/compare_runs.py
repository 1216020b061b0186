"""Compare `council bench smc` / `council bench throughput` runs of two versions of Council.

Each run's JSON holds SMC tokens/s per replica count and its ratio to raw decode measured in
the same run. Runs of the two versions were made alternately (before, after, before, …) on
this drifting machine; this prints the medians of each version and their ratio, for both
figures. The confinement's measurements live in bench/results/confinement/:

    python -m bench.compare_runs bench/results/confinement
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from statistics import median


def load(directory: Path, version: str) -> list[dict]:
    return [json.loads(p.read_text()) for p in sorted(directory.glob(f"*_{version}*.json"))]


def summary(directory: Path) -> dict:
    before, after = load(directory, "before"), load(directory, "after")
    out = {"runs": {"before": len(before), "after": len(after)}}
    for replicas in ("1", "2"):
        row = {}
        for version, runs in (("before", before), ("after", after)):
            row[version] = {
                "smc_tokens_per_s": median(r["smc"][replicas]["tokens_per_s"] for r in runs),
                "smc_vs_raw": median(r["smc_vs_raw"][replicas] for r in runs),
                "raw_tokens_per_s": median(r["smc"][replicas].get("raw_tokens_per_s", r["raw_tokens_per_s"])
                                           for r in runs),
            }
        row["after_over_before"] = {k: row["after"][k] / row["before"][k] for k in row["before"]}
        out[f"replicas_{replicas}"] = row
    return out


def main(argv: list[str]) -> None:
    directory = Path(argv[0] if argv else "bench/results/confinement")
    result = summary(directory)
    print(f"{result['runs']['before']} runs before, {result['runs']['after']} after (medians)")
    for replicas in ("1", "2"):
        row = result[f"replicas_{replicas}"]
        b, a, r = row["before"], row["after"], row["after_over_before"]
        print(f"  {replicas} replica(s): SMC {b['smc_tokens_per_s']:.1f} -> {a['smc_tokens_per_s']:.1f} tok/s "
              f"(x{r['smc_tokens_per_s']:.3f}); vs raw {b['smc_vs_raw']:.3f} -> {a['smc_vs_raw']:.3f} "
              f"(x{r['smc_vs_raw']:.3f}); raw {b['raw_tokens_per_s']:.1f} -> {a['raw_tokens_per_s']:.1f}")


if __name__ == "__main__":
    main(sys.argv[1:])
