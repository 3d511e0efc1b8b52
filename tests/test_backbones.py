"""Pretrained feature extractors: local weights, channels, freezing, saving."""

import copy

import numpy as np
import pytest
import torch
from sklearn.utils._param_validation import InvalidParameterError

import skestimators
from skestimators import GalaxyZooRegressor, ImageClassifier
from skestimators._engine import Callback
from skestimators.datasets import make_galaxy_classes, make_galaxy_zoo
from skestimators.nn import PretrainedNet
from skestimators.nn._backbones import _torchvision_models

try:  # as the estimators import it (see _torchvision_models)
    _torchvision_models()
except ImportError:
    pytest.skip("needs torchvision (extra vision)", allow_module_level=True)

FAST = {
    "max_epochs": 1, "batch_size": 16, "lr": 0.01, "head_width": None,
    "dropout": 0.0, "validation_fraction": None, "device": "cpu",
    "random_state": 0,
}  # fmt: skip


@pytest.fixture(scope="module")
def weights(tmp_path_factory):
    """A resnet18 state dict with random weights, saved like downloaded ones."""
    torch.manual_seed(123)
    model = _torchvision_models().resnet18(weights=None)
    path = tmp_path_factory.mktemp("weights") / "resnet18.pth"
    torch.save(model.state_dict(), path)
    return path, model.state_dict()


@pytest.fixture(scope="module")
def zoo():
    return make_galaxy_zoo(32, size=32, random_state=0)


def _features(module):
    return {k: v.detach().clone() for k, v in module.features.state_dict().items()}


def _assert_loaded(features, state, *, skip=("fc.",)):
    for key, value in state.items():
        if key.startswith(skip) or key.endswith("num_batches_tracked"):
            continue
        torch.testing.assert_close(features[key], value, rtol=0, atol=0, msg=key)


class _Snapshot(Callback):
    """Keeps the module's weights as training begins."""

    def on_train_begin(self, net, **kwargs):
        self.state_ = copy.deepcopy(net.module_.state_dict())


def test_weights_file_is_loaded_into_the_architecture(weights):
    path, state = weights
    reg = GalaxyZooRegressor("resnet18", pretrained_weights=path)
    module = reg._make_module((3, 32, 32), 37)
    assert isinstance(module, PretrainedNet) and module.n_features == 512
    _assert_loaded(_features(module), state)
    assert isinstance(module.features.fc, torch.nn.Identity)  # ImageNet head gone
    # without the file, the weights are random (and differ from the file's)
    random = GalaxyZooRegressor("resnet18")._make_module((3, 32, 32), 37)
    assert not torch.equal(random.features.conv1.weight, state["conv1.weight"])


def test_wrong_weights_file_is_a_clear_error(weights, tmp_path):
    path, state = weights
    with pytest.raises(FileNotFoundError, match="missing.pth"):
        PretrainedNet("resnet18", (3, 32, 32), 5, pretrained_weights="missing.pth")
    other = tmp_path / "linear.pt"
    torch.save(torch.nn.Linear(2, 3).state_dict(), other)
    with pytest.raises(ValueError, match=r"missing keys: conv1\.weight.*unexpected"):
        PretrainedNet("resnet18", (3, 32, 32), 5, pretrained_weights=other)
    shapes = tmp_path / "shapes.pt"
    torch.save({**state, "conv1.weight": torch.zeros(64, 3, 3, 3)}, shapes)
    with pytest.raises(ValueError, match=r"mismatched keys: conv1\.weight"):
        PretrainedNet("resnet18", (3, 32, 32), 5, pretrained_weights=shapes)
    not_a_state = tmp_path / "list.pt"
    torch.save([1, 2], not_a_state)
    with pytest.raises(ValueError, match="does not hold a state dict"):
        PretrainedNet("resnet18", (3, 32, 32), 5, pretrained_weights=not_a_state)
    with pytest.raises(ValueError, match="pretrained_weights needs"):
        GalaxyZooRegressor(pretrained_weights=path)._make_module((3, 32, 32), 37)


def test_corrupt_weights_files_are_a_clear_error(tmp_path):
    pytest.importorskip("safetensors")
    for suffix, kind in ((".pth", "a PyTorch state dict"), (".safetensors", "a safe")):
        corrupt = tmp_path / f"corrupt{suffix}"
        corrupt.write_bytes(b"not a weights file")
        with pytest.raises(ValueError, match=f"Could not read .*corrupt.* as {kind}"):
            PretrainedNet("resnet18", (3, 32, 32), 5, pretrained_weights=corrupt)


@pytest.mark.parametrize("channels", [1, 3, 5, 6])
def test_first_convolution_is_adapted_to_the_channels(weights, channels):
    path, state = weights
    net = PretrainedNet("resnet18", (channels, 20, 20), 4, pretrained_weights=path)
    rgb = state["conv1.weight"]
    conv = net.features.conv1
    if channels == 1:  # the sum of the RGB kernels
        torch.testing.assert_close(conv.weight, rgb.sum(1, True))
    else:  # R, G, B, R, ... scaled by 3 / channels
        expected = rgb[:, torch.arange(channels) % 3] * (3 / channels)
        torch.testing.assert_close(conv.weight, expected)
    if channels % 3 == 0 or channels == 1:
        # a grey image gives the response of the RGB network to a grey image
        grey = torch.rand(2, 1, 32, 32)
        torch.testing.assert_close(
            conv(grey.expand(-1, channels, -1, -1)),
            torch.nn.functional.conv2d(grey.expand(-1, 3, -1, -1), rgb, None, 2, 3),
            rtol=1e-4,
            atol=1e-5,
        )
    assert net.eval()(torch.rand(2, channels, 20, 20)).shape == (2, 4)


def test_frozen_epochs_keep_the_features_and_train_the_head(weights, zoo):
    path, state = weights
    X, y = zoo
    snap = _Snapshot()
    frozen = GalaxyZooRegressor(
        "resnet18", pretrained_weights=path, freeze_epochs=1, callbacks=[snap], **FAST
    ).fit(X, y)
    module = frozen.net_.module_
    params = dict(module.features.named_parameters())
    for name, param in params.items():
        torch.testing.assert_close(param.detach(), state[name], rtol=0, atol=0)
        assert param.requires_grad  # unfrozen once training ends
    head = module.head[-1].weight.detach()
    assert not torch.equal(head, snap.state_["head.1.weight"])
    # the Galaxy Zoo tree still holds on top of the feature extractor
    y_pred = frozen.predict(X)
    np.testing.assert_allclose(y_pred[:, :3].sum(1), 1.0, atol=1e-5)
    # without freezing, the same epoch moves the features
    moved = GalaxyZooRegressor("resnet18", pretrained_weights=path, **FAST).fit(X, y)
    conv = moved.net_.module_.features.conv1.weight.detach()
    assert not torch.equal(conv, state["conv1.weight"])


def test_features_learn_at_a_fraction_of_the_learning_rate(weights, zoo):
    path, _ = weights
    X, y = zoo
    reg = GalaxyZooRegressor("resnet18", pretrained_weights=path, **FAST).fit(X, y)
    features, rest = reg.net_.optimizer_.param_groups
    assert features["lr"] == pytest.approx(FAST["lr"] * 0.1)  # "auto"
    assert rest["lr"] == pytest.approx(FAST["lr"])
    module = reg.net_.module_
    assert {id(p) for p in features["params"]} == {
        id(p) for p in module.features.parameters()
    }
    reg.set_params(feature_lr_factor=0.5, pretrained_weights=None).fit(X, y)
    lrs = [g["lr"] for g in reg.net_.optimizer_.param_groups]
    assert lrs == pytest.approx([FAST["lr"] * 0.5, FAST["lr"]])
    reg.set_params(feature_lr_factor="auto").fit(X, y)  # random weights: one lr
    assert [g["lr"] for g in reg.net_.optimizer_.param_groups] == [FAST["lr"]]


class _TinyFeatures(torch.nn.Module):
    """A feature extractor class: maps images to feature maps."""

    def __init__(self, input_shape=(3, 16, 16)):
        super().__init__()
        self.conv = torch.nn.Conv2d(input_shape[0], 6, 3)

    def forward(self, x):
        return torch.relu(self.conv(x))


def test_any_module_is_a_feature_extractor():
    X, y = make_galaxy_classes(48, size=16, random_state=0)
    kwargs = dict(FAST, chirality_pairs=None)
    extractor = torch.nn.Sequential(
        torch.nn.Conv2d(3, 8, 3), torch.nn.ReLU(), torch.nn.Flatten(2)
    )
    with pytest.raises(ValueError, match="feature maps"):  # (n, C, H*W): neither
        ImageClassifier(extractor, **kwargs).fit(X, y)
    for module in (extractor[:2], _TinyFeatures):
        clf = ImageClassifier(module, freeze_epochs=1, **kwargs).fit(X, y)
        net = clf.net_.module_
        assert isinstance(net, PretrainedNet)
        assert net.n_features == (8 if module is not _TinyFeatures else 6)
        assert clf.predict_proba(X[:3]).shape == (3, len(clf.classes_))
    assert extractor[0].weight.grad is None  # the user's instance is copied


def test_saved_model_loads_without_the_weights_file(weights, zoo, tmp_path):
    path, _ = weights
    X, y = zoo
    local = tmp_path / "resnet18.pth"
    local.write_bytes(path.read_bytes())
    reg = GalaxyZooRegressor(
        "resnet18", pretrained_weights=str(local), freeze_epochs=1, **FAST
    ).fit(X, y)
    saved = skestimators.save(reg, tmp_path / "reg.skops", format="safe")
    local.unlink()
    loaded = skestimators.load(saved)
    assert loaded.pretrained_weights == str(local)
    np.testing.assert_array_equal(loaded.predict(X), reg.predict(X))


@pytest.mark.parametrize("name", ["efficientnet_b0", "convnext_tiny", "resnet50"])
def test_other_architectures_build_and_run(name):
    torch.manual_seed(0)
    net = PretrainedNet(name, (2, 24, 24), 37, constraint="divisive").eval()
    with torch.no_grad():
        out = net(torch.rand(2, 2, 24, 24))
    assert out.shape == (2, 37)
    torch.testing.assert_close(out[:, :3].sum(1), torch.ones(2))


def test_unknown_architecture_is_refused():
    with pytest.raises(InvalidParameterError, match="module"):
        GalaxyZooRegressor("vgg16").fit(*make_galaxy_zoo(8, size=16, random_state=0))
    with pytest.raises(ValueError, match="module must be one of"):
        PretrainedNet("vgg16", (3, 16, 16), 2)
