"""Tuning: how soon a trial starts once its slot frees, and what the feature cache saves.

Two measurements, each with its baseline taken in the same run:

* **Trial start** (``_trial_start.py``): a tuning job on a real kennel server runs its
  trials on warm slots; the latency is from the moment a slot is freed to the trial
  script's first line. The baseline is the same latency on the cold path (a fresh
  training job per trial, as SageMaker starts them).
* **Feature cache** (``_feature_cache.py``): the same trials (frozen backbone, head
  only) with and without cached backbone features; time per trial is the trainer's own
  training time. The cache's one-off build time and both objectives are printed beside.

    RESULT trial_start_p50_s <s> goal<=1
    RESULT feature_cache_speedup <ratio> goal>=100
"""

from __future__ import annotations

import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


def main() -> None:
    sys.path.insert(0, str(REPO))
    from _feature_cache import measure_feature_cache
    from _trial_start import measure_trial_start

    start = measure_trial_start()
    cache = measure_feature_cache()
    print()
    print(
        f"trial start: warm p50 {start['p50_s']:.3f} s, p90 {start['p90_s']:.3f} s over "
        f"{start['samples']:.0f} trials; cold (a fresh job per trial) p50 "
        f"{start['cold_p50_s']:.2f} s ({start['cold_p50_s'] / max(start['p50_s'], 1e-6):.0f}x)"
    )
    print(
        f"feature cache: built once in {cache['build_seconds']:.1f} s; per trial "
        f"{cache['uncached_trial_seconds']:.2f} s without, {cache['cached_trial_seconds']:.4f} s "
        f"with; objective {cache['objective_uncached']:.4f} vs {cache['objective_cached']:.4f} "
        f"(tolerance {cache['objective_tolerance']:g})"
    )
    print()
    print(f"RESULT trial_start_p50_s {start['p50_s']:.3f} goal<=1")
    print(f"RESULT feature_cache_speedup {cache['speedup']:.0f} goal>=100")


if __name__ == "__main__":
    main()
