"""The official code's networks in the kit's: architectures read from PyTorch-made state dicts (both
file formats), outputs equal to PyTorch's (tests/fixtures/official/make_fixtures.py made the files and
the outputs), and what does not fit refused naming the first key that does not."""

import re
import sys
from collections import OrderedDict
from pathlib import Path

import numpy as np
import pytest

from replication import official, pth

FIXTURES = Path(__file__).parent / "fixtures" / "official"
sys.path.insert(0, str(FIXTURES))
from images import fixture_images  # noqa: E402

CASES = {  # fixture -> (what the kit reads from it, its model keys, the inputs PyTorch was given)
    "resnet_2blocks_ngf8": ("ResNet-2 generator, ngf 8, instance norm",
                            {"generator": "resnet", "n_blocks": 2, "ngf": 8}, fixture_images(2, 32)),
    "unet_128_batch_ngf2": ("U-Net-128 generator, ngf 2, batch norm",
                            {"generator": "unet", "num_downs": 7, "ngf": 2, "generator_norm": "batch"}, fixture_images(1, 128)),
    "patchgan_3layers_ndf4": ("PatchGAN n_layers 3, ndf 4, batch norm",
                              {"discriminator": "patchgan", "n_layers_d": 3, "ndf": 4, "discriminator_norm": "batch"},
                              fixture_images(2, 32, channels=6)),
}


def state_of(name: str) -> OrderedDict:
    return pth.read_state_dict(FIXTURES / f"{name}.pth")


@pytest.mark.parametrize("suffix", ["", "_legacy"])
@pytest.mark.parametrize("name", CASES)
def test_the_kits_network_gives_pytorchs_outputs(name, suffix):
    described, model_keys, inputs = CASES[name]
    arch, network = official.network_from(state_of(name + suffix), name)
    assert arch.described == described and arch.model == model_keys
    np.testing.assert_allclose(network(inputs, training=False).numpy(), np.load(FIXTURES / f"{name}_outputs.npy"), rtol=0, atol=1e-5)


def test_old_instance_norm_statistics_are_ignored_as_the_official_code_ignores_them():
    """Files saved before PyTorch 0.4 carry running_mean/running_var for InstanceNorm2d; test.py drops them."""
    state = state_of("resnet_2blocks_ngf8")
    old = OrderedDict()
    for key, value in state.items():
        old[key] = value
        if key == "model.1.bias":
            old["model.2.running_mean"] = np.full(8, 5.0, np.float32)
            old["model.2.running_var"] = np.full(8, 9.0, np.float32)
    _, network = official.network_from(old, "old.pth")
    inputs = CASES["resnet_2blocks_ngf8"][2]
    np.testing.assert_allclose(network(inputs).numpy(), np.load(FIXTURES / "resnet_2blocks_ngf8_outputs.npy"), atol=1e-5)


def refusal(state) -> str:
    with pytest.raises(pth.PthError) as err:
        official.network_from(state, "x.pth")
    assert "\n" not in str(err.value)
    return str(err.value)


def test_what_the_kit_cannot_build_is_refused_naming_the_first_key_that_does_not_fit():
    state = state_of("resnet_2blocks_ngf8")
    shift = {"conv_block.5.": "conv_block.6.", "conv_block.6.": "conv_block.7."}  # a Dropout after the first ReLU
    with_dropout = OrderedDict((re.sub(r"conv_block\.[56]\.", lambda m: shift[m.group()], k), v) for k, v in state.items())
    assert "model.10.conv_block.6.weight does not fit the kit's ResNet-2 generator" in refusal(with_dropout)
    extra = OrderedDict(state, **{"model.3.weight": np.ones(8, np.float32)})
    assert "model.3.weight does not fit" in refusal(extra)
    missing = OrderedDict((k, v) for k, v in state.items() if k != "model.7.bias")
    assert "lacks model.7.bias" in refusal(missing)
    wrong = OrderedDict(state, **{"model.4.weight": np.zeros((16, 8, 5, 5), np.float32)})
    assert "model.4.weight has shape (16, 8, 5, 5)" in refusal(wrong)
    batch = OrderedDict(state, **{"model.2.weight": np.ones(8, np.float32)})
    assert "model.2.weight (batch norm in a ResNet generator) does not fit" in refusal(batch)


def test_a_state_dict_of_another_model_is_refused():
    classifier = OrderedDict([("features.0.weight", np.zeros((64, 3, 11, 11), np.float32)), ("fc.weight", np.zeros((10, 64), np.float32))])
    assert "its first key 'features.0.weight' does not fit any network of the official code" in refusal(classifier)


def official_state_of(network, slots) -> OrderedDict:
    """A Keras network's weights under the official code's keys and layouts (the mapping run backwards)."""
    import keras

    layers = [layer for layer in network.layers if isinstance(layer, tuple(official.KERAS_KINDS.values()))]
    weighted = [slot for slot in slots if slot.kind in official.KERAS_KINDS]
    state = OrderedDict()
    for layer, slot in zip(layers, weighted, strict=True):
        values = layer.get_weights()
        if isinstance(layer, keras.layers.BatchNormalization):
            state.update(zip(slot.keys(), values))
        else:
            state.update(zip(slot.keys(), [np.transpose(values[0], (3, 2, 0, 1)), *values[1:]]))
    return state


@pytest.mark.parametrize("model_keys, in_channels, size", [
    ({"generator": "unet", "num_downs": 8, "ngf": 2, "generator_norm": "instance"}, 3, 256),
    ({"discriminator": "pixel", "ndf": 4, "discriminator_norm": "batch"}, 6, 16),
    ({"discriminator": "patchgan", "n_layers_d": 1, "ndf": 4, "discriminator_norm": "instance"}, 3, 32),
])
def test_other_depths_and_norms_are_read_from_their_keys(model_keys, in_channels, size):
    """U-Net 256 with instance norm, the PixelGAN, a 16x16 PatchGAN: a state dict laid out as the official
    code's is read back as the same architecture with the same outputs."""
    arch = official.Architecture("generator" if "generator" in model_keys else "discriminator", model_keys, (), "", in_channels)
    network = arch.build()
    slots = {"unet": lambda: official.unet_slots(8, "instance"), "pixel": lambda: official.pixel_slots("batch"),
             "patchgan": lambda: official.patchgan_slots(1, "instance")}[model_keys.get("generator") or model_keys["discriminator"]]()
    found, copy = official.network_from(official_state_of(network, slots), "x.pth")
    assert found.model == model_keys and found.in_channels == in_channels
    images = fixture_images(1, size, in_channels)
    np.testing.assert_allclose(copy(images, training=False).numpy(), network(images, training=False).numpy(), atol=1e-6)
