import numpy as np
import pytest
import torch
from apache_beam import Create
from apache_beam.ml.inference.base import KeyedModelHandler, ModelHandler, RunInference
from apache_beam.testing.util import assert_that

from tubelets import masks
from tubelets.records import FrameDetections
from tubelets.transforms.proposals import (
    DetectorModelHandler, FrameDetector, ProposeInstances, detection_chunks, detects_frame, to_detections,
)

HEIGHT, WIDTH = 48, 64


def soft_masks() -> torch.Tensor:
    """float32 ``[3, 1, H, W]`` mask probabilities: 0.9 in a block per instance, 0.5 (not > 0.5) in a stripe."""
    probabilities = torch.zeros(3, 1, HEIGHT, WIDTH)
    for n in range(3):
        probabilities[n, 0, 10 : 20 + n, 5 + 10 * n : 15 + 10 * n] = 0.9
        probabilities[n, 0, 40:, :] = 0.5
    return probabilities


def torchvision_output() -> dict:
    return {
        "boxes": torch.tensor([[5, 10, 15, 20], [15, 10, 25, 21], [25, 10, 35, 22]], dtype=torch.float32),
        "scores": torch.tensor([0.9, 0.3, 0.05]),
        "labels": torch.tensor([2, 5, 1]),
        "masks": soft_masks(),
    }


def test_to_detections_keeps_scores_at_or_above_the_threshold():
    detections = to_detections(torchvision_output(), score_threshold=0.3)
    assert detections.frame == -1  # set from the key later
    np.testing.assert_array_equal(detections.scores, np.float32([0.9, 0.3]))
    np.testing.assert_array_equal(detections.labels, [2, 5])
    np.testing.assert_array_equal(detections.boxes, np.float32([[5, 10, 15, 20], [15, 10, 25, 21]]))
    assert (detections.boxes.dtype, detections.scores.dtype, detections.labels.dtype) == (
        np.float32, np.float32, np.int64
    )


def test_to_detections_encodes_the_masks_thresholded_above_one_half():
    detections = to_detections(torchvision_output(), score_threshold=0.0)
    assert len(detections) == len(detections.masks) == 3
    expected = (soft_masks()[:, 0] > 0.5).numpy().astype(np.uint8)
    for rle, mask in zip(detections.masks, expected):
        assert rle["size"] == [HEIGHT, WIDTH] and isinstance(rle["counts"], str)
        np.testing.assert_array_equal(masks.decode(rle), mask)
    assert [masks.area(rle) for rle in detections.masks] == [100, 110, 120]  # the 0.5 stripe is out


def test_to_detections_of_nothing_is_empty_with_the_right_shapes():
    empty = {"boxes": torch.zeros(0, 4), "scores": torch.zeros(0), "labels": torch.zeros(0, dtype=torch.int64),
             "masks": torch.zeros(0, 1, HEIGHT, WIDTH)}
    detections = to_detections(empty, 0.5)
    assert len(detections) == 0 and detections.boxes.shape == (0, 4) and detections.masks == []
    assert len(to_detections(torchvision_output(), score_threshold=0.95)) == 0


@pytest.fixture(scope="module")
def untrained_handler() -> DetectorModelHandler:
    detector_cfg = {"preset": "small", "checkpoint": None, "num_classes": 7, "min_size": HEIGHT, "max_size": WIDTH,
                    "detections_per_frame": 10, "score_threshold": 0.05}
    return DetectorModelHandler(detector_cfg, device="cpu", precision="auto", batch_size=2)


def test_an_untrained_detector_gives_one_frame_detections_per_frame(untrained_handler):
    torch.manual_seed(0)  # the untrained weights
    model = untrained_handler.load_model()
    assert not model.model.training and next(model.model.parameters()).device.type == "cpu"
    rng = np.random.default_rng(0)
    chunks = [rng.integers(0, 256, (1, HEIGHT, WIDTH, 3), dtype=np.uint8) for _ in range(2)]
    outputs = [detections for chunk in untrained_handler.run_inference(chunks, model) for detections in chunk]
    assert len(outputs) == 2 and all(isinstance(o, FrameDetections) for o in outputs)
    assert [len(detections) for detections in outputs] == [10, 10]  # seeded random weights: 10 above 0.05
    for detections in outputs:
        assert len(detections.boxes) == len(detections.labels) == len(detections.masks) == len(detections)
        assert np.all(detections.scores >= 0.05)
        assert np.all((detections.labels >= 1) & (detections.labels <= 6))
        assert np.all(detections.boxes[:, :2] >= 0) and np.all(detections.boxes[:, 2] <= WIDTH)
        assert np.all(detections.boxes[:, 3] <= HEIGHT)
        for rle in detections.masks:
            assert masks.decode(rle).shape == (HEIGHT, WIDTH)


def test_the_handler_sizes_batches_and_stays_per_process_on_the_cpu(untrained_handler):
    chunks = [np.zeros((n, HEIGHT, WIDTH, 3), np.uint8) for n in (1, 2)]
    assert untrained_handler.get_num_bytes(chunks) == 3 * HEIGHT * WIDTH * 3
    assert untrained_handler.batch_elements_kwargs()["max_batch_size"] == 2
    assert not untrained_handler.share_model_across_processes()
    gpu = DetectorModelHandler(untrained_handler._detector_cfg, device="cuda", precision="auto", batch_size=2)
    assert gpu.share_model_across_processes()  # asked where the model loads: no GPU is needed to build the graph
    assert untrained_handler.get_metrics_namespace() == "tubelets.proposals"


# Frames of 64x96 (height, width) fill their padded size exactly: a batch-mate that pads the batch further changes
# what the detector sees around the frame, as a portrait one does (96x96).
FRAME, PORTRAIT = (64, 96), (96, 64)


@pytest.fixture(scope="module")
def handler_and_model():
    detector_cfg = {"preset": "small", "checkpoint": None, "num_classes": 7, "min_size": FRAME[0],
                    "max_size": FRAME[1], "detections_per_frame": 20, "score_threshold": 0.05}
    handler = DetectorModelHandler(detector_cfg, device="cpu", precision="auto", batch_size=8)
    torch.manual_seed(0)  # the untrained weights
    return handler, handler.load_model()


def assert_same_detections(found: FrameDetections, expected: FrameDetections):
    """Bit for bit: the same boxes, scores, labels and masks, in the same order."""
    assert len(expected) > 0  # something to compare
    for name in ("boxes", "scores", "labels"):
        np.testing.assert_array_equal(getattr(found, name), getattr(expected, name), err_msg=name, strict=True)
    assert found.masks == expected.masks


def random_frame(seed: int, size: tuple[int, int] = FRAME) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (*size, 3), dtype=np.uint8)


# A frame's batch-mates, as the sizes before it and after it: other sizes, its own size in batches of 2, 4 and 8.
@pytest.mark.parametrize(
    "before, after",
    [([], [(48, 80)]), ([(80, 128)], []), ([], [PORTRAIT]), ([PORTRAIT], [(48, 80)]),
     ([], [FRAME]), ([FRAME] * 2, [FRAME]), ([FRAME] * 5, [FRAME] * 2)],
    ids=["smaller-after", "larger-before", "portrait-after", "between-portrait-and-smaller", "same-size-2",
         "same-size-4-third", "same-size-8-sixth"],
)
def test_a_frames_detections_do_not_depend_on_its_batch_mates(handler_and_model, before, after):
    handler, model = handler_and_model
    frame = random_frame(1)
    ((alone,),) = handler.run_inference([frame[None]], model)
    mates = [random_frame(10 + k, size)[None] for k, size in enumerate(before + after)]
    batch = mates[: len(before)] + [frame[None]] + mates[len(before) :]
    outputs = list(handler.run_inference(batch, model))
    assert len(outputs) == len(batch) and all(len(chunk) == 1 for chunk in outputs)
    assert_same_detections(outputs[len(before)][0], alone)


def test_a_chunk_of_frames_is_one_forward_pass_whatever_its_batch_mates(handler_and_model):
    handler, model = handler_and_model
    chunk = np.stack([random_frame(seed) for seed in (1, 2, 3)])
    calls = []
    hook = model.model.backbone.register_forward_hook(lambda _module, inputs, _output: calls.append(len(inputs[0])))
    try:
        (alone,) = handler.run_inference([chunk], model)
        (_, beside, _) = handler.run_inference([random_frame(5, PORTRAIT)[None], chunk, random_frame(6)[None]], model)
    finally:
        hook.remove()
    assert calls == [3, 1, 3, 1]  # a pass a chunk: its three frames together
    assert len(alone) == len(beside) == 3
    for found, expected in zip(beside, alone):
        assert_same_detections(found, expected)


class BrightnessHandler(ModelHandler):
    """A stand-in detector: one detection per frame whose label is the frame's gray level."""

    def load_model(self):
        return None

    def run_inference(self, batch, model, inference_args=None):
        return [[FrameDetections(-1, np.float32([[0, 0, 2, 2]]), np.float32([0.5]), np.int64([int(f[0, 0, 0])]),
                                 [masks.encode(np.ones((2, 2), np.uint8))]) for f in chunk] for chunk in batch]


def brightness_frames(length: int) -> dict[str, list[np.ndarray]]:
    """Frame ``t`` of video ``k`` (``a``, ``b``) is gray at ``10 * k + t``: what BrightnessHandler detects."""
    return {video: [np.full((2, 2, 3), 10 * k + t, np.uint8) for t in range(length)] for k, video in enumerate("ab")}


@pytest.mark.parametrize("detect_every, frames_per_forward, detected", [(1, 1, range(3)), (3, 1, (0, 3, 6)),
                                                                       (2, 3, (0, 2, 4, 6))])
def test_propose_instances_numbers_each_chunk_s_frames_of_their_video(pipeline, detect_every, frames_per_forward,
                                                                      detected):
    length = max(detected) + 1
    chunks = [((video, first), chunk) for video, frames in brightness_frames(length).items()
              for first, chunk in detection_chunks(frames, detect_every, frames_per_forward)]

    def check(outputs):
        found = sorted((key, d.frame, int(d.labels[0])) for key, d in outputs)
        assert found == [(video, t, 10 * k + t) for k, video in enumerate("ab") for t in detected]

    with pipeline as p:
        assert_that(p | Create(chunks) | ProposeInstances(BrightnessHandler(), detect_every), check)


def test_detection_chunks_stream_the_detected_frames_a_chunk_at_a_time():
    frames = [np.full((2, 2, 3), t, np.uint8) for t in range(8)]
    chunks = list(detection_chunks(iter(frames), detect_every=2, frames_per_forward=3))
    assert [(first, chunk[:, 0, 0, 0].tolist()) for first, chunk in chunks] == [(0, [0, 2, 4]), (6, [6])]
    (first, single), _ = list(detection_chunks(frames, 1, 1))[:2]
    assert single.shape == (1, 2, 2, 3) and np.shares_memory(single, frames[0])  # one frame: a view, no copy
    taken = []

    def decoded():
        for frame in frames:
            taken.append(frame)
            yield frame

    stream = detection_chunks(decoded(), detect_every=1, frames_per_forward=4)
    next(stream)
    assert len(taken) == 4  # the first chunk goes out before the rest is decoded


def test_detects_frame_is_the_first_frame_then_every_nth():
    assert [t for t in range(8) if detects_frame(t, 3)] == [0, 3, 6]
    assert [t for t in range(3) if detects_frame(t, 1)] == [0, 1, 2]


@pytest.mark.parametrize("precision, dtype", [("auto", torch.float32), ("bfloat16", torch.bfloat16)])
def test_the_detector_runs_at_the_configured_precision(handler_and_model, precision, dtype):
    handler, model = handler_and_model
    low = DetectorModelHandler(handler._detector_cfg, device="cpu", precision=precision, batch_size=8)
    model = FrameDetector(model.model, precision, model._score_threshold)
    seen = []
    hook = model.model.backbone.register_forward_hook(lambda _module, _inputs, output: seen.append(output["0"].dtype))
    try:
        ((detections,),) = low.run_inference([random_frame(0)[None]], model)
    finally:
        hook.remove()
    assert seen == [dtype]  # auto: float32 on the CPU
    assert detections.boxes.dtype == detections.scores.dtype == np.float32 and len(detections) > 0


class SharedAsOnAGpu(DetectorModelHandler):
    """The handler as on a GPU machine: one model for every process, reached through Beam's proxy."""

    def share_model_across_processes(self) -> bool:
        return True


def test_a_model_shared_across_processes_gives_what_a_process_of_its_own_does(handler_and_model, pipeline, tmp_path):
    handler, model = handler_and_model
    weights = tmp_path / "detector.pt"  # the shared model loads in a process of its own: from the same file
    torch.save(model.model.state_dict(), weights)
    detector_cfg = {**handler._detector_cfg, "checkpoint": str(weights)}
    settings = {"device": "cpu", "precision": "auto", "batch_size": 2, "torch_threads": 1}
    chunks = [random_frame(0)[None], np.stack([random_frame(1), random_frame(2)])]
    expected = DetectorModelHandler(detector_cfg, **settings).load_model().detect(chunks)

    def check(outputs):
        found = dict(outputs)
        assert sorted(found) == [("v", 0), ("v", 1)]
        for first, chunk in enumerate(expected):
            assert len(found[("v", first)]) == len(chunk)
            for got, detections in zip(found[("v", first)], chunk):
                assert_same_detections(got, detections)

    with pipeline as p:
        keyed = p | Create([(("v", first), chunk) for first, chunk in enumerate(chunks)])
        assert_that(keyed | RunInference(KeyedModelHandler(SharedAsOnAGpu(detector_cfg, **settings))), check)


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
@pytest.mark.parametrize("precision", ["float32", "auto"])
def test_on_a_gpu_the_shared_detector_finds_what_the_cpu_finds(handler_and_model, pipeline, tmp_path, precision):
    handler, model = handler_and_model
    weights = tmp_path / "detector.pt"
    torch.save(model.model.state_dict(), weights)
    detector_cfg = {**handler._detector_cfg, "checkpoint": str(weights)}
    chunks = [np.stack([random_frame(1), random_frame(2)])]
    on_cpu = DetectorModelHandler(detector_cfg, device="cpu", precision="float32", batch_size=2).load_model()
    expected = on_cpu.detect(chunks)[0]
    on_gpu = DetectorModelHandler(detector_cfg, device="cuda", precision=precision, batch_size=2)
    assert on_gpu.share_model_across_processes()

    def check(outputs):
        (found,) = dict(outputs).values()
        assert len(found) == len(expected) == 2
        for got, wanted in zip(found, expected):
            assert len(got) > 0
            if precision == "float32":  # the same arithmetic on another device: the best boxes agree
                np.testing.assert_allclose(got.boxes[:5], wanted.boxes[:5], atol=0.5)

    with pipeline as p:
        assert_that(p | Create([(("v", 0), chunks[0])]) | RunInference(KeyedModelHandler(on_gpu)), check)
