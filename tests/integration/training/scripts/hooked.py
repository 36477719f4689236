"""A user's own training script with kennel's debugger hook: the few lines it takes.

``--loader-sleep S`` makes the data loader wait S seconds per batch (an I/O bottleneck);
``--lr`` far too high makes the tensors explode. It trains a small MLP on synthetic data,
with an evaluation pass per epoch.
"""

import argparse
import os
import time
from pathlib import Path

import torch
from torch import nn

from kennel import debugger


def batches(count: int, size: int, sleep: float, generator: torch.Generator):
    for _ in range(count):
        if sleep:
            time.sleep(sleep)  # the slow storage this script is built to have
        x = torch.randn(size, 32, generator=generator)
        yield x, (x[:, 0] > 0).long() + 2 * (x[:, 1] > 0).long()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--lr", type=float, default=0.05)
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--steps", type=int, default=40)
    parser.add_argument("--loader-sleep", type=float, default=0.0)
    parser.add_argument("--model-dir", default=os.environ.get("SM_MODEL_DIR", "."))
    args, _ = parser.parse_known_args()
    torch.manual_seed(0)
    generator = torch.Generator().manual_seed(0)
    model = nn.Sequential(nn.Linear(32, 64), nn.ReLU(), nn.Linear(64, 4))
    criterion = nn.CrossEntropyLoss()
    optimizer = torch.optim.SGD(model.parameters(), lr=args.lr)

    hook = debugger.get_hook()  # the three lines a script adds
    hook.register_module(model)
    hook.register_loss(criterion)

    for epoch in range(args.epochs):
        hook.set_mode(debugger.modes.TRAIN)
        model.train()
        for x, y in batches(args.steps, 32, args.loader_sleep, generator):
            optimizer.zero_grad()
            loss = criterion(model(x), y)
            loss.backward()
            optimizer.step()
        hook.set_mode(debugger.modes.EVAL)
        model.eval()
        with torch.no_grad():
            for x, y in batches(5, 64, 0.0, generator):
                valid = criterion(model(x), y)
        print(f"epoch={epoch} loss={loss.item():.4f} valid_loss={valid.item():.4f}", flush=True)
    torch.save(model.state_dict(), Path(args.model_dir) / "model.pth")


if __name__ == "__main__":
    main()
