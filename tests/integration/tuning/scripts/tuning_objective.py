"""A SageMaker-style script whose objective a test controls through its hyperparameters.

``--quality good|hopeless`` sets the loss curve (hopeless starts 50x worse), a hopeless
run is slow (so early stopping has time to stop it), and ``--fail yes`` crashes it.
"""

import argparse
import time


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--quality", default="good")
    parser.add_argument("--fail", default="no")
    parser.add_argument("--epochs", type=int, default=4)
    parser.add_argument("--epoch-seconds", type=float, default=0.1)
    args, _ = parser.parse_known_args()
    if args.fail == "yes":
        raise RuntimeError("this trial fails on purpose (--fail yes)")
    base = 50.0 if args.quality == "hopeless" else 1.0
    pause = max(args.epoch_seconds, 2.0) if args.quality == "hopeless" else args.epoch_seconds
    for epoch in range(args.epochs):
        time.sleep(pause)
        print(f"epoch={epoch} objective_loss={base * 0.8**epoch:.5f}", flush=True)


if __name__ == "__main__":
    main()
