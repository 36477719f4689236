"""A training script written for SageMaker (argparse with SM_* defaults, like hpo.py).

kennel must run it unchanged: it reads the contract's environment, checks it, trains a
tiny model on the channel's images, logs a SageMaker-style metric line and saves a model.
"""

import argparse
import json
import os
import sys
from pathlib import Path

import torch
from torch import nn


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--lr", type=float, default=0.1)
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--fail", type=str, default="no")
    parser.add_argument("--sleep", type=float, default=0.0)
    parser.add_argument("--model-dir", type=str, default=os.environ["SM_MODEL_DIR"])
    parser.add_argument("--train", type=str, default=os.environ["SM_CHANNEL_TRAIN"])
    parser.add_argument("--output-data-dir", type=str, default=os.environ["SM_OUTPUT_DATA_DIR"])
    args, _ = parser.parse_known_args()

    hosts = json.loads(os.environ["SM_HOSTS"])
    hps = json.loads(os.environ["SM_HPS"])
    print(f"hosts={hosts} current={os.environ['SM_CURRENT_HOST']} hps={hps}", flush=True)
    print(f"num_cpus={os.environ['SM_NUM_CPUS']} channels={os.environ['SM_CHANNELS']}")
    classes = sorted(p.name for p in Path(args.train).iterdir() if p.is_dir())
    print(f"classes={len(classes)} lr={args.lr} batch_size={args.batch_size}", flush=True)
    if args.fail == "yes":
        raise ZeroDivisionError("the user's script divided by zero on purpose")
    if args.sleep:
        import time

        for i in range(int(args.sleep * 10)):
            print(f"sleeping step={i}", flush=True)
            time.sleep(0.1)
    model = nn.Linear(4, len(classes))
    loss = 1.0
    for epoch in range(3):
        loss = loss * 0.5
        print(f"Test set: Average loss: {loss:.4f}, epoch {epoch}", flush=True)
    torch.save(model.state_dict(), Path(args.model_dir) / "model.pth")
    (Path(args.output_data_dir) / "env.json").write_text(
        json.dumps({k: v for k, v in os.environ.items() if k.startswith("SM_")})
    )
    sys.exit(0)


if __name__ == "__main__":
    main()
