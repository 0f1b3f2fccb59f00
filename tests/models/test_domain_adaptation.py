import math

import pytest
import torch

from tubelets.config import load_config
from tubelets.errors import ConfigError
from tubelets.models import training_loop
from tubelets.models.checkpoints import read_checkpoint, write_checkpoint
from tubelets.models.domain_adaptation import (
    DomainDiscriminator,
    GradientReversal,
    adapt_detector,
    domain_loss,
    grl_coefficient,
    reverse_gradient,
)
from tubelets.models.loading import load_detector
from tubelets.synth import generate_dataset

# The detector at the tiny frames' size (the preset would upsample 64x48 to 256x192 first).
TINY = ["detector.min_size=48", "detector.max_size=64", "adapt_detector.batch_size=1",
        "adapt_detector.target_batch_size=1", "adapt_detector.checkpoint_every=2", "adapt_detector.warmup_steps=1",
        "adapt_detector.target_frames_per_video=4"]


def test_the_gradient_reversal_is_the_identity_forward_and_reverses_and_scales_backward():
    features = torch.randn(2, 3, 4, 5, dtype=torch.float64, requires_grad=True)
    out = reverse_gradient(features, 0.7)
    assert torch.equal(out, features)
    weights = torch.randn_like(features)
    (out * weights).sum().backward()
    torch.testing.assert_close(features.grad, -0.7 * weights)
    # autograd's own check against the (reversed) numerical Jacobian of the identity: -0.7 * I.
    jacobian = torch.autograd.functional.jacobian(lambda x: GradientReversal.apply(x, 0.7), features[0, 0, 0])
    torch.testing.assert_close(jacobian, -0.7 * torch.eye(5, dtype=torch.float64))


def test_the_coefficient_follows_the_dann_schedule():
    cfg = {"steps": 100, "grl_max": 0.5, "grl_gamma": 10.0}
    assert grl_coefficient(0, cfg) == 0.0
    assert grl_coefficient(50, cfg) == pytest.approx(0.5 * (2 / (1 + math.exp(-5.0)) - 1))
    assert grl_coefficient(100, cfg) == pytest.approx(0.5 * (2 / (1 + math.exp(-10.0)) - 1))
    values = [grl_coefficient(step, cfg) for step in range(0, 101, 10)]
    assert values == sorted(values) and values[-1] < 0.5


def test_the_discriminator_learns_separable_features_and_the_reversal_pushes_features_apart_from_it():
    torch.manual_seed(0)
    discriminator = DomainDiscriminator(channels=8, width=16)
    source = {"0": torch.randn(4, 8, 6, 6) + 1.0}
    target = {"0": torch.randn(4, 8, 6, 6) - 1.0}
    optimizer = torch.optim.Adam(discriminator.parameters(), lr=0.01)
    first, first_accuracy = domain_loss(discriminator, source, target, ["0"], 1.0)
    for _ in range(40):
        loss, accuracy = domain_loss(discriminator, source, target, ["0"], 1.0)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    assert loss.item() < 0.5 * first.item() and accuracy > 0.95 and accuracy > first_accuracy
    # Through the reversal, the features' gradient climbs the discriminator's loss instead of descending it.
    features = {"0": source["0"].clone().requires_grad_(True)}
    domain_loss(discriminator, features, target, ["0"], 1.0)[0].backward()
    reversed_grad = features["0"].grad.clone()
    features["0"].grad = None
    domain_loss(discriminator, features, target, ["0"], 0.0)[0].backward()
    assert not features["0"].grad.any()  # coefficient 0: the features get nothing
    plain = {"0": source["0"].clone().requires_grad_(True)}
    torch.nn.functional.binary_cross_entropy_with_logits(
        discriminator(plain["0"]), torch.zeros(4, 1, 6, 6)).backward()
    torch.testing.assert_close(reversed_grad, -plain["0"].grad / 2)  # the mean over the two domains' terms


@pytest.fixture(scope="module")
def sets(tmp_path_factory):
    root = tmp_path_factory.mktemp("dann")
    generate_dataset(str(root / "source"), videos=1, seed=3, width=64, height=48)
    generate_dataset(str(root / "target"), videos=1, seed=4, width=64, height=48, domain="shifted")
    return root


def test_a_tiny_adaptation_writes_a_loadable_detector_and_resumes_as_the_uninterrupted_run(sets, tmp_path, monkeypatch):
    cfg = load_config(None, TINY + ["adapt_detector.steps=4"])
    whole = adapt_detector([str(sets / "source")], str(sets / "target" / "videos" / "*.mp4"), str(tmp_path / "a.pt"),
                           cfg, device="cpu", progress=False)
    assert (whole.start_step, whole.steps, len(whole.history)) == (0, 4, 4)
    assert {"detection", "domain", "domain_accuracy", "lambda"} <= set(whole.history[0])
    assert whole.history[0]["lambda"] == 0.0 and whole.history[-1]["lambda"] > 0
    checkpoint = read_checkpoint(str(tmp_path / "a.pt"))
    assert checkpoint["step"] == 4 and "discriminator" in checkpoint
    model, info = load_detector(load_config(None, TINY + [f"detector.checkpoint={tmp_path / 'a.pt'}"]))
    assert info.checkpoint_id == whole.checkpoint_id and info.source == "tubelets"
    with torch.no_grad():
        model([torch.rand(3, 48, 64)])  # a detector like any other

    # Interrupted right after the step-2 checkpoint, then resumed: the uninterrupted run's weights.
    def interrupt_after_writing(url, written):
        write_checkpoint(url, written)
        raise KeyboardInterrupt

    monkeypatch.setattr(training_loop, "write_checkpoint", interrupt_after_writing)
    with pytest.raises(KeyboardInterrupt):
        adapt_detector([str(sets / "source")], str(sets / "target"), str(tmp_path / "b.pt"), cfg, device="cpu",
                       progress=False)
    monkeypatch.undo()
    assert read_checkpoint(str(tmp_path / "b.pt"))["step"] == 2
    resumed = adapt_detector([str(sets / "source")], str(sets / "target"), str(tmp_path / "b.pt"), cfg,
                             resume=True, device="cpu", progress=False)
    assert (resumed.start_step, resumed.steps) == (2, 4)
    assert resumed.checkpoint_id == whole.checkpoint_id
    assert [h["loss"] for h in resumed.history] == [h["loss"] for h in whole.history[2:]]


def test_levels_the_detector_lacks_are_refused(sets, tmp_path):
    cfg = load_config(None, TINY + ["adapt_detector.steps=1", "adapt_detector.feature_levels=[7]"])
    with pytest.raises(ConfigError, match="feature_levels"):
        adapt_detector([str(sets / "source")], str(sets / "target"), str(tmp_path / "c.pt"), cfg, device="cpu",
                       progress=False)
