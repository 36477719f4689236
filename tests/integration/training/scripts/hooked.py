"""A user's own training script with kennel's debugger hook: the few lines it takes.

``--loader-sleep S`` makes the data loader wait S seconds per batch (an I/O bottleneck);
``--lr`` far too high makes the tensors explode; ``--slow-rank R`` puts the loader's sleep
on that rank only (an unbalanced multi-instance job). It trains a small MLP on synthetic
data, with DDP when the job has several instances, and an evaluation pass per epoch.
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
    parser.add_argument("--slow-rank", type=int, default=-1)
    parser.add_argument("--model-dir", default=os.environ.get("SM_MODEL_DIR", "."))
    args, _ = parser.parse_known_args()
    torch.manual_seed(0)
    generator = torch.Generator().manual_seed(0)
    model = nn.Sequential(nn.Linear(32, 64), nn.ReLU(), nn.Linear(64, 4))
    criterion = nn.CrossEntropyLoss()
    optimizer = torch.optim.SGD(model.parameters(), lr=args.lr)
    rank = int(os.environ.get("RANK", "0"))
    trained: nn.Module = model
    if int(os.environ.get("WORLD_SIZE", "1")) > 1:
        torch.distributed.init_process_group("gloo")
        trained = nn.parallel.DistributedDataParallel(model)
    sleep = args.loader_sleep if args.slow_rank in (-1, rank) else 0.0

    hook = debugger.get_hook()  # the three lines a script adds
    hook.register_module(model)
    hook.register_loss(criterion)

    for epoch in range(args.epochs):
        hook.set_mode(debugger.modes.TRAIN)
        model.train()
        for x, y in batches(args.steps, 32, sleep, generator):
            optimizer.zero_grad()
            loss = criterion(trained(x), y)
            loss.backward()
            optimizer.step()
        hook.set_mode(debugger.modes.EVAL)
        model.eval()
        with torch.no_grad():
            for x, y in batches(5, 64, 0.0, generator):
                valid = criterion(model(x), y)
        print(f"epoch={epoch} loss={loss.item():.4f} valid_loss={valid.item():.4f}", flush=True)
    if rank == 0:
        torch.save(model.state_dict(), Path(args.model_dir) / "model.pth")
    if torch.distributed.is_initialized():
        torch.distributed.destroy_process_group()


if __name__ == "__main__":
    main()
