"""A SageMaker-style PyTorch script for the SDK's tests: a small MLP on synthetic data,
DDP when the job has several instances, with kennel's debugger hook (three lines)."""

import argparse
import os
from pathlib import Path

import torch
from torch import nn

from kennel import debugger


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--lr", type=float, default=0.05)
    parser.add_argument("--model-dir", default=os.environ.get("SM_MODEL_DIR", "."))
    args, _ = parser.parse_known_args()
    torch.manual_seed(0)
    generator = torch.Generator().manual_seed(int(os.environ.get("RANK", "0")))
    model = nn.Sequential(nn.Linear(16, 32), nn.ReLU(), nn.Linear(32, 4))
    criterion = nn.CrossEntropyLoss()
    optimizer = torch.optim.SGD(model.parameters(), lr=args.lr)
    trained: nn.Module = model
    if int(os.environ.get("WORLD_SIZE", "1")) > 1:
        torch.distributed.init_process_group("gloo")
        trained = nn.parallel.DistributedDataParallel(model)

    hook = debugger.get_hook()
    hook.register_module(model)
    hook.register_loss(criterion)

    for epoch in range(args.epochs):
        for _ in range(args.steps):
            x = torch.randn(32, 16, generator=generator)
            y = (x[:, 0] > 0).long() + 2 * (x[:, 1] > 0).long()
            optimizer.zero_grad()
            loss = criterion(trained(x), y)
            loss.backward()
            optimizer.step()
        print(f"epoch={epoch} loss={loss.item():.4f} rank={os.environ.get('RANK', '0')}")
    if int(os.environ.get("RANK", "0")) == 0:
        torch.save(model.state_dict(), Path(args.model_dir) / "model.pth")
    if torch.distributed.is_initialized():
        torch.distributed.destroy_process_group()


if __name__ == "__main__":
    main()
