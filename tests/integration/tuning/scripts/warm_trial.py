"""A trial script that stamps its first line, so the start latency can be read from its log.

``--epochs N --epoch-seconds S`` prints ``objective_loss`` N times, S seconds apart;
``--quality`` only changes the loss (so a Grid search has distinct trials).
"""

import time

print(f"first_line={time.time():.6f}", flush=True)

import argparse  # noqa: E402 - after the stamp on purpose

parser = argparse.ArgumentParser()
parser.add_argument("--quality", default="a")
parser.add_argument("--epochs", type=int, default=4)
parser.add_argument("--epoch-seconds", type=float, default=0.5)
args, _ = parser.parse_known_args()
base = 1.0 + "abcdefghij".find(args.quality[0]) / 10
for epoch in range(args.epochs):
    time.sleep(args.epoch_seconds)
    print(f"epoch={epoch} objective_loss={base * 0.8**epoch:.5f}", flush=True)
