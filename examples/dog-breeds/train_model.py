"""Train the classifier with the tuned hyperparameters, profiled and watched by Debugger
rules, on one instance or several (PyTorch DDP).

The AWS project's ``train_model.py`` with smdebug's hook; kennel's hook takes the same
lines (``get_hook``, ``register_module``, ``register_loss``, ``set_mode``) and does nothing
outside a training job. With ``instance_count > 1`` every instance runs this script with
torch.distributed's environment (``WORLD_SIZE``, ``RANK``, ``MASTER_ADDR``,
``MASTER_PORT``), trains on its share of the data, and the first one saves the model.
"""

import logging
import os
import sys

import torch
import torch.distributed as dist
from hpo import parse_args
from inference import net, preprocess, save_model
from torch import nn, optim
from torch.nn.parallel import DistributedDataParallel
from torch.utils.data import DataLoader
from torch.utils.data.distributed import DistributedSampler
from torchvision import datasets

from kennel.debugger import get_hook, modes

logger = logging.getLogger(__name__)
logger.setLevel(logging.INFO)
logger.addHandler(logging.StreamHandler(sys.stdout))


def test(model, test_loader, criterion, hook):
    loss, accuracy = evaluate(model, test_loader, criterion, hook)
    logger.info(f"Test Loss: {loss:.4f}")
    logger.info(f"Test Accuracy: {accuracy:.4f}")


def evaluate(model, loader, criterion, hook):
    """Mean loss and accuracy; the hook records the pass as one evaluation (EVAL mode)."""
    model.eval()
    hook.set_mode(modes.EVAL)
    total_loss, correct = 0.0, 0
    with torch.no_grad():
        for images, labels in loader:
            outputs = model(images)
            total_loss += criterion(outputs, labels).item() * len(labels)
            correct += (outputs.argmax(dim=1) == labels).sum().item()
    hook.set_mode(modes.TRAIN)
    count = len(loader.dataset)
    return total_loss / count, correct / count


def train(model, trained, loaders, criterion, optimizer, epochs, hook):
    """``trained`` is the model as trained (DDP-wrapped on several instances); ``model``
    is the network itself, which evaluates without talking to the other instances."""
    train_loader, valid_loader = loaders
    for epoch in range(epochs):
        if isinstance(train_loader.sampler, DistributedSampler):
            train_loader.sampler.set_epoch(epoch)
        trained.train()
        hook.set_mode(modes.TRAIN)
        running_loss, seen = 0.0, 0
        for images, labels in train_loader:
            optimizer.zero_grad()
            loss = criterion(trained(images), labels)
            loss.backward()
            optimizer.step()
            running_loss += loss.item() * len(labels)
            seen += len(labels)
        valid_loss, valid_accuracy = evaluate(model, valid_loader, criterion, hook)
        logger.info(
            f"Epoch {epoch}: train loss {running_loss / seen:.4f}, valid loss {valid_loss:.4f}, "
            f"valid accuracy {valid_accuracy:.4f}"
        )


def create_data_loaders(data, batch_size, image_size, distributed):
    train_data = datasets.ImageFolder(
        os.path.join(data, "train"), transform=preprocess(image_size, train=True)
    )
    valid_data = datasets.ImageFolder(os.path.join(data, "valid"), transform=preprocess(image_size))
    test_data = datasets.ImageFolder(os.path.join(data, "test"), transform=preprocess(image_size))
    sampler = DistributedSampler(train_data, seed=0) if distributed else None
    train_loader = DataLoader(
        train_data, batch_size=batch_size, shuffle=sampler is None, sampler=sampler
    )
    return (
        train_loader,
        DataLoader(valid_data, batch_size=batch_size),
        DataLoader(test_data, batch_size=batch_size),
    )


def main(args):
    distributed = int(os.environ.get("WORLD_SIZE", "1")) > 1
    if distributed:
        dist.init_process_group("gloo")
    rank = dist.get_rank() if distributed else 0
    logger.info(f"lr {args.lr}, batch size {args.batch_size}, epochs {args.epochs}")
    logger.info(f"Rank {rank} of {int(os.environ.get('WORLD_SIZE', '1'))}, data: {args.data}")
    torch.manual_seed(args.seed)  # the same initial weights on every instance
    train_loader, valid_loader, test_loader = create_data_loaders(
        args.data, args.batch_size, args.image_size, distributed
    )
    classes = train_loader.dataset.classes
    model = net(len(classes), args.arch, args.pretrained)
    criterion = nn.CrossEntropyLoss()

    hook = get_hook()
    hook.register_module(model)
    hook.register_loss(criterion)

    trained = DistributedDataParallel(model) if distributed else model
    trainable = [p for p in model.parameters() if p.requires_grad]
    optimizer = optim.SGD(trainable, lr=args.lr, momentum=0.9)
    logger.info(f"Training {args.arch} (pretrained: {args.pretrained}) on {len(classes)} classes")
    train(model, trained, (train_loader, valid_loader), criterion, optimizer, args.epochs, hook)
    logger.info("Testing the model")
    test(model, test_loader, criterion, hook)
    if rank == 0:
        logger.info("Saving the model")
        save_model(
            model, args.model_dir, arch=args.arch, image_size=args.image_size, classes=classes
        )
    if distributed:
        dist.destroy_process_group()


if __name__ == "__main__":
    main(parse_args(description=__doc__.split("\n")[0]))
