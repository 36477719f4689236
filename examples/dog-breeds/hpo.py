"""One trial of the hyperparameter search: train the classifier with the given learning rate
and batch size, then log its test loss, which the tuner minimises.

Written for SageMaker's training contract, as the AWS project's ``hpo.py``: the
hyperparameters arrive as ``--name value`` arguments, the data set (``train/ valid/
test/`` class folders) in ``SM_CHANNEL_TRAINING`` and the model goes to ``SM_MODEL_DIR``.
It runs unchanged on kennel, on SageMaker, or by hand::

    python hpo.py --data dogImages --model-dir out --arch small-cnn --pretrained false
"""

import argparse
import logging
import os
import sys

import torch
from inference import ARCHITECTURES, net, preprocess, save_model
from torch import nn, optim
from torch.utils.data import DataLoader
from torchvision import datasets

logger = logging.getLogger(__name__)
logger.setLevel(logging.INFO)
logger.addHandler(logging.StreamHandler(sys.stdout))


def test(model, test_loader, criterion):
    """Log the test loss and accuracy (the tuner reads ``Test Loss: x`` from the log)."""
    loss, accuracy = evaluate(model, test_loader, criterion)
    logger.info(f"Test Loss: {loss:.4f}")
    logger.info(f"Test Accuracy: {accuracy:.4f}")


def evaluate(model, loader, criterion):
    model.eval()
    total_loss, correct = 0.0, 0
    with torch.no_grad():
        for images, labels in loader:
            outputs = model(images)
            total_loss += criterion(outputs, labels).item() * len(labels)
            correct += (outputs.argmax(dim=1) == labels).sum().item()
    count = len(loader.dataset)
    return total_loss / count, correct / count


def train(model, train_loader, valid_loader, criterion, optimizer, epochs):
    for epoch in range(epochs):
        model.train()
        running_loss = 0.0
        for images, labels in train_loader:
            optimizer.zero_grad()
            loss = criterion(model(images), labels)
            loss.backward()
            optimizer.step()
            running_loss += loss.item() * len(labels)
        train_loss = running_loss / len(train_loader.dataset)
        valid_loss, valid_accuracy = evaluate(model, valid_loader, criterion)
        logger.info(
            f"Epoch {epoch}: train loss {train_loss:.4f}, valid loss {valid_loss:.4f}, "
            f"valid accuracy {valid_accuracy:.4f}"
        )
    return model


def create_data_loaders(data, batch_size, image_size):
    train_data = datasets.ImageFolder(
        os.path.join(data, "train"), transform=preprocess(image_size, train=True)
    )
    valid_data = datasets.ImageFolder(os.path.join(data, "valid"), transform=preprocess(image_size))
    test_data = datasets.ImageFolder(os.path.join(data, "test"), transform=preprocess(image_size))
    return (
        DataLoader(train_data, batch_size=batch_size, shuffle=True),
        DataLoader(valid_data, batch_size=batch_size),
        DataLoader(test_data, batch_size=batch_size),
    )


def main(args):
    logger.info(f"lr {args.lr}, batch size {args.batch_size}, epochs {args.epochs}")
    logger.info(f"Data: {args.data}")
    torch.manual_seed(args.seed)
    train_loader, valid_loader, test_loader = create_data_loaders(
        args.data, args.batch_size, args.image_size
    )
    classes = train_loader.dataset.classes
    model = net(len(classes), args.arch, args.pretrained)
    criterion = nn.CrossEntropyLoss()
    trainable = [p for p in model.parameters() if p.requires_grad]
    optimizer = optim.SGD(trainable, lr=args.lr, momentum=0.9)
    logger.info(f"Training {args.arch} (pretrained: {args.pretrained}) on {len(classes)} classes")
    model = train(model, train_loader, valid_loader, criterion, optimizer, args.epochs)
    logger.info("Testing the model")
    test(model, test_loader, criterion)
    logger.info("Saving the model")
    save_model(model, args.model_dir, arch=args.arch, image_size=args.image_size, classes=classes)


def boolean(text):
    """``true``/``false`` as the hyperparameters arrive (SageMaker sends strings)."""
    if text.lower() in ("true", "1", "yes"):
        return True
    if text.lower() in ("false", "0", "no"):
        return False
    raise argparse.ArgumentTypeError(f"expected true or false, got {text!r}")


def parse_args(argv=None, description=None):
    """The hyperparameters (shared with ``train_model.py``) and the contract's folders."""
    parser = argparse.ArgumentParser(description=description or __doc__.split("\n")[0])
    parser.add_argument("--lr", type=float, default=0.01)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--epochs", type=int, default=5)
    parser.add_argument("--arch", choices=ARCHITECTURES, default="resnet50")
    parser.add_argument("--pretrained", type=boolean, default=True)
    parser.add_argument("--image-size", type=int, default=224)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--data", default=os.environ.get("SM_CHANNEL_TRAINING"))
    parser.add_argument("--model-dir", default=os.environ.get("SM_MODEL_DIR", "."))
    args = parser.parse_args(argv)
    if not args.data:
        parser.error("--data is required outside a training job (SM_CHANNEL_TRAINING unset)")
    return args


if __name__ == "__main__":
    main(parse_args())
