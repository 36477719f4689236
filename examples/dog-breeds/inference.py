"""The dog-breed classifier's network and its endpoint handlers (SageMaker's PyTorch
hosting contract: ``model_fn``, ``input_fn``, ``predict_fn``; ``output_fn`` is the default,
which writes the scores as JSON).

``hpo.py`` and ``train_model.py`` build the network with ``net()`` and save it with
``save_model()``, which also copies this file into the model as ``code/inference.py``: the
endpoint then builds exactly the network that was trained.
"""

import io
import json
import shutil
from pathlib import Path

import torch
from PIL import Image
from torch import nn
from torchvision import models, transforms

MODEL_FILE = "model.pth"
CONFIG_FILE = "model-config.json"
IMAGE_TYPES = ("image/jpeg", "image/png", "application/x-image")
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
RESNETS = {
    "resnet18": (models.resnet18, models.ResNet18_Weights),
    "resnet50": (models.resnet50, models.ResNet50_Weights),
}
ARCHITECTURES = (*RESNETS, "small-cnn")


# The network ---------------------------------------------------------------------------


class SmallCNN(nn.Module):
    """Three conv blocks and a head: trains in seconds on a CPU, from random weights.

    Every block has its own ReLU module, so the debugger hook sees each layer's
    activations apart (PoorWeightInitialization compares them).
    """

    def __init__(self, num_classes, width=16):
        super().__init__()
        self.features = nn.Sequential(
            _conv_block(3, width),
            nn.MaxPool2d(2),
            _conv_block(width, width * 2),
            nn.MaxPool2d(2),
            _conv_block(width * 2, width * 4),
            nn.AdaptiveAvgPool2d(4),
            nn.Flatten(),
        )
        self.fc = nn.Linear(width * 4 * 16, num_classes)

    def forward(self, images):
        return self.fc(self.features(images))


def _conv_block(inputs, outputs):
    return nn.Sequential(
        nn.Conv2d(inputs, outputs, kernel_size=3, padding=1, bias=False),
        nn.BatchNorm2d(outputs),
        nn.ReLU(),
    )


def net(num_classes, arch="resnet50", pretrained=False):
    """The classifier: a ResNet with a new two-layer head, as in the AWS project, or the
    small CNN.

    With ``pretrained`` the ResNet starts from torchvision's ImageNet weights (downloaded
    once into torch hub's cache) and only the head is trained.
    """
    if arch == "small-cnn":
        if pretrained:
            raise ValueError("small-cnn has no pretrained weights; pass --pretrained false")
        return SmallCNN(num_classes)
    if arch not in RESNETS:
        raise ValueError(f"unknown --arch {arch!r}; expected one of {ARCHITECTURES}")
    build, weights = RESNETS[arch]
    model = build(weights=weights.DEFAULT if pretrained else None)
    if pretrained:
        for parameter in model.parameters():
            parameter.requires_grad = False
    model.fc = nn.Sequential(
        nn.Linear(model.fc.in_features, 128),
        nn.ReLU(),
        nn.Linear(128, num_classes),
    )
    return model


def preprocess(image_size, train=False):
    """Images as the network takes them; training adds a random crop (no horizontal
    flip: the demo's digits, unlike dogs, are not mirror images of themselves)."""
    resize = (
        [transforms.RandomResizedCrop(image_size, scale=(0.8, 1.0), ratio=(0.9, 1.1))]
        if train
        else [transforms.Resize((image_size, image_size))]
    )
    return transforms.Compose(
        [*resize, transforms.ToTensor(), transforms.Normalize(IMAGENET_MEAN, IMAGENET_STD)]
    )


def save_model(model, model_dir, *, arch, image_size, classes):
    """What ``model_fn`` loads: the weights, the network's settings and this file."""
    model_dir = Path(model_dir)
    torch.save(model.state_dict(), model_dir / MODEL_FILE)
    config = {"arch": arch, "image_size": image_size, "classes": list(classes)}
    (model_dir / CONFIG_FILE).write_text(json.dumps(config, indent=2))
    code = model_dir / "code"
    code.mkdir(exist_ok=True)
    shutil.copy(Path(__file__), code / "inference.py")


# The endpoint's handlers ---------------------------------------------------------------


def model_fn(model_dir):
    config = json.loads((Path(model_dir) / CONFIG_FILE).read_text())
    network = net(len(config["classes"]), config["arch"])
    state = torch.load(Path(model_dir) / MODEL_FILE, map_location="cpu", weights_only=True)
    network.load_state_dict(state)
    network.eval()
    return {"network": network, "transform": preprocess(config["image_size"])}


def input_fn(request_body, content_type="image/jpeg"):
    kind = content_type.split(";")[0].strip().lower()
    if kind not in IMAGE_TYPES:
        raise ValueError(
            f"content type {content_type!r} is not supported; send an image as one of "
            f"{', '.join(IMAGE_TYPES)}"
        )
    return Image.open(io.BytesIO(request_body)).convert("RGB")


def predict_fn(image, model):
    """The class probabilities, one row for the image: ``[[p_0, ..., p_n]]``."""
    batch = model["transform"](image).unsqueeze(0)
    with torch.no_grad():
        return torch.softmax(model["network"](batch), dim=1)
