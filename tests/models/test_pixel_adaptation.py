"""Self-supervised pixel embedding (tubelets.models.pixel_adaptation): colour, dropout, the loss, a run, resume, CLI."""

from __future__ import annotations

import copy

import numpy as np
import pytest
import torch

from tubelets.config import load_config
from tubelets.errors import DatasetError
from tubelets.models import pixel_adaptation as pa
from tubelets.models.ipdt.checkpoint import load_tracking_models, read_tracker_checkpoint
from tubelets.models.ipdt.pixel import PixelEmbedding

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def test_rgb_to_lab_matches_scikit_image_and_lab_to_rgb_inverts_it():
    from skimage.color import rgb2lab

    rgb = np.random.default_rng(0).random((5, 7, 3))
    lab = pa.rgb_to_lab(torch.as_tensor(rgb).permute(2, 0, 1))
    np.testing.assert_allclose(lab.permute(1, 2, 0).numpy() * 100, rgb2lab(rgb), atol=0.05)
    np.testing.assert_allclose(pa.lab_to_rgb(lab).permute(1, 2, 0).numpy(), rgb, atol=1e-4)


def test_colour_dropout_neutralises_the_dropped_channels_only():
    lab = pa.rgb_to_lab(torch.rand(2, 3, 4, 5))
    chroma_dropped = pa.drop_channels(lab, "ab")
    assert torch.equal(chroma_dropped[:, 0], lab[:, 0])
    assert torch.all(chroma_dropped[:, 1:] == 0)
    light_dropped = pa.drop_channels(lab, "L")
    assert torch.all(light_dropped[:, 0] == 0.5) and torch.equal(light_dropped[:, 1:], lab[:, 1:])
    with pytest.raises(ValueError, match="Lab channels"):
        pa.drop_channels(lab, "x")


def test_chroma_dropout_gives_the_backbone_a_grey_frame_of_the_same_lightness():
    frames = np.random.default_rng(1).integers(0, 256, (2, 6, 8, 3), dtype=np.uint8)
    grey = pa.colour_dropped_frames(frames, "ab").astype(int)
    assert np.abs(grey - grey[..., :1]).max() <= 1  # R = G = B
    lightness = pa.p2_colours(frames, 4.0, (6, 8))[:, 0]
    np.testing.assert_allclose(pa.p2_colours(grey.astype(np.uint8), 4.0, (6, 8))[:, 0], lightness, atol=0.01)


def _moving_texture(seed: int, shift: int, size=(12, 14), dim=8):
    """``(embedding, colours)`` of a random texture and the same texture moved ``shift`` cells right."""
    generator = torch.Generator().manual_seed(seed)
    texture = torch.randn(1, dim + 3, size[0], size[1] + shift, generator=generator)
    first, moved = texture[..., shift:], texture[..., : size[1]]
    return (3 * first[:, :dim], first[:, dim:]), (3 * moved[:, :dim], moved[:, dim:])


def test_the_loss_is_lower_for_the_true_next_frame_than_for_a_shuffled_one():
    (memory, memory_colours), (target, target_colours) = _moving_texture(seed=0, shift=2)
    pixels = target.shape[-2] * target.shape[-1]
    order = torch.randperm(pixels, generator=torch.Generator().manual_seed(1))

    def shuffled(maps):
        return maps.flatten(2)[..., order].reshape(maps.shape)

    def loss(embedding, colours):
        return pa.reconstruction_loss(embedding, memory[:, None], memory_colours[:, None], colours, 3, 0.1).item()

    true_next = loss(target, target_colours)
    assert true_next < 0.3 * loss(shuffled(target), shuffled(target_colours))
    # Where the texture came from inside the memory frame (all but the first 2 columns) it is copied back.
    copied = pa.reconstruct_colours(target, memory[:, None], memory_colours[:, None], 3)
    torch.testing.assert_close(copied[..., 2:], target_colours[..., 2:], atol=0.05, rtol=0)
    # Beyond the window the match is not found: the same motion, a radius too small for it.
    assert true_next < pa.reconstruction_loss(target, memory[:, None], memory_colours[:, None], target_colours,
                                              1, 0.1).item()


def test_reconstruction_weights_are_a_softmax_over_the_memory_window():
    # Constant colours in the memory frames come back exactly whatever the attention: the weights sum to 1.
    target = torch.randn(2, 4, 5, 6)
    memory = torch.randn(2, 3, 4, 5, 6)
    colours = torch.tensor([0.3, -0.2, 0.1])[None, None, :, None, None].expand(2, 3, 3, 5, 6)
    out = pa.reconstruct_colours(target, memory, colours, radius=2)
    torch.testing.assert_close(out, colours[:, 0], atol=1e-6, rtol=0)


def test_the_loss_decreases_when_the_embedding_trains_on_a_tiny_clip():
    (memory_p2, memory_colours), (target_p2, target_colours) = _moving_texture(seed=2, shift=1, dim=16)
    torch.manual_seed(0)
    embedding = PixelEmbedding(16, 8)
    optimizer = torch.optim.Adam(embedding.parameters(), lr=0.01)
    losses = []
    for _ in range(15):
        memory = embedding(memory_p2)[:, None]
        loss = pa.reconstruction_loss(embedding(target_p2), memory, memory_colours[:, None], target_colours, 2, 0.1)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    assert losses[-1] < 0.7 * losses[0]


@pytest.fixture(scope="module")
def tiny_videos(tmp_path_factory) -> str:
    """Two Shapes-VIS videos of 64x48 frames, shifted domain; the glob of their mp4s."""
    from tubelets.synth import generate_dataset

    root = tmp_path_factory.mktemp("pixel-adaptation") / "videos"
    generate_dataset(str(root), videos=2, seed=5, width=64, height=48, domain="shifted")
    return str(root / "videos" / "*.mp4")


def tiny_cfg(steps: int, **changes) -> dict:
    cfg = copy.deepcopy(load_config())
    cfg["adapt_pixel"].update(steps=steps, batch_size=2, warmup_steps=1, checkpoint_every=2, frames_per_video=6,
                              colour_dropout=["ab", "L"], radius=3, **changes)
    return cfg


def _embedding_state(url: str) -> dict:
    return {k: v for k, v in read_tracker_checkpoint(url)["model"].items() if k.startswith("embedding.")}


def test_a_tiny_run_writes_a_checkpoint_the_tracker_loads_with_only_the_embedding_changed(tiny_videos, tmp_path):
    out = str(tmp_path / "adapted.pt")
    result = pa.adapt_pixel_embedding(tiny_videos, out, tiny_cfg(3), device="cpu", progress=False)
    assert (result.start_step, result.steps, result.frames) == (0, 3, 12) and np.isfinite(result.loss)
    init = read_tracker_checkpoint("builtin:tracker-vos-small")
    detector, model, info = load_tracking_models(out, device="cpu")  # checks the detector identity too
    assert info.detector_checkpoint_id == init["detector"]["checkpoint_id"] and info.step == 3
    adapted = read_tracker_checkpoint(out)["model"]
    changed = {k for k, v in adapted.items() if not torch.equal(v.float(), init["model"][k].float())}
    assert changed and all(k.startswith("embedding.") for k in changed)


def test_resume_continues_as_the_uninterrupted_run(tiny_videos, tmp_path):
    whole, parts = str(tmp_path / "whole.pt"), str(tmp_path / "parts.pt")
    pa.adapt_pixel_embedding(tiny_videos, whole, tiny_cfg(3, from_scratch=True), device="cpu", progress=False)
    pa.adapt_pixel_embedding(tiny_videos, parts, tiny_cfg(2, from_scratch=True), device="cpu", progress=False)
    resumed = pa.adapt_pixel_embedding(tiny_videos, parts, tiny_cfg(3, from_scratch=True), resume=True,
                                       device="cpu", progress=False)
    assert (resumed.start_step, resumed.steps) == (2, 3)
    for name, value in _embedding_state(whole).items():
        torch.testing.assert_close(_embedding_state(parts)[name], value)


def test_the_cli_adapts_and_ends_with_the_training_line(tiny_videos, tmp_path, capsys):
    from tubelets.cli import main

    out = str(tmp_path / "cli.pt")
    assert main(["adapt", "pixel", tiny_videos, out, "--steps", "1", "--no-progress", "--device", "cpu",
                 "--threads", "1", "--set", "adapt_pixel.batch_size=1", "--set", "adapt_pixel.frames_per_video=4",
                 "--set", "adapt_pixel.colour_dropout=[ab]"]) == 0
    assert "trained 1 steps (0->1) on " in capsys.readouterr().err
    assert read_tracker_checkpoint(out)["config"]["adapt_pixel"]["steps"] == 1


def test_a_glob_that_matches_no_video_is_refused(tmp_path):
    with pytest.raises(DatasetError, match="matches no video"):
        pa.adapt_pixel_embedding(str(tmp_path / "*.mp4"), str(tmp_path / "out.pt"), tiny_cfg(1), device="cpu")


def test_label_propagation_follows_a_square_through_an_embedding_that_moves_with_it():
    frames, size = 4, (10, 12)
    texture = 3 * torch.randn(8, size[0], size[1] + frames, generator=torch.Generator().manual_seed(3))
    # Frame t sees the texture moved t cells right (a pan), so a cell's embedding follows its content.
    embeddings = torch.stack([texture[:, :, frames - t: frames - t + size[1]] for t in range(frames)])
    prompt = torch.zeros(2, *size)
    prompt[1, 3:7, 2:6] = 1
    labels = pa.propagate_labels(embeddings, {0: prompt}, memory=2, radius=2)
    assert labels.shape == (frames, 2, *size)
    torch.testing.assert_close(labels.sum(1), torch.ones(frames, *size))
    expected = torch.zeros(size, dtype=torch.bool)
    expected[3:7, 2 + frames - 1: 6 + frames - 1] = True
    # The first frames - 1 columns show content no earlier frame had: they match anything.
    assert torch.equal((labels[-1].argmax(0) == 1)[:, frames - 1:], expected[:, frames - 1:])
