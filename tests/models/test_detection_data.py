import pytest
import json

import numpy as np
import torch

from tubelets import masks as rle
from tubelets.io.dataset import YouTubeVISDataset
from tubelets.errors import DatasetError
from tubelets.models.detection_data import (
    CombinedFrames,
    FrameDetectionDataset,
    batch_indices,
    index_frames,
    open_frames,
)

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def test_every_frame_is_a_sample_with_its_visible_instances(tiny_shapes_url):
    dataset = YouTubeVISDataset(tiny_shapes_url)
    samples = index_frames(dataset)
    assert len(samples) == sum(v.length for v in dataset.videos)
    for sample in samples:
        expected = [
            track.category_id
            for track in dataset.tracks(sample.video_id)
            if track.segmentations[sample.frame_index] is not None
        ]
        assert list(sample.category_ids) == expected


def test_stride_picks_every_nth_frame(tiny_shapes_url):
    samples = index_frames(YouTubeVISDataset(tiny_shapes_url), frame_stride=3)
    assert {s.frame_index % 3 for s in samples} == {0}


def test_items_hold_the_frame_and_its_masks(tiny_shapes_url):
    data = FrameDetectionDataset(tiny_shapes_url)
    index = next(i for i, s in enumerate(data.samples) if s.masks)
    image, target = data[index]
    sample = data.samples[index]
    frame = dict(data.dataset.iter_frames(sample.video_id))[sample.frame_index]
    assert image.shape == (3, 48, 64) and image.dtype == torch.float32
    assert torch.equal(image, torch.tensor(frame).permute(2, 0, 1).float() / 255)
    assert target["masks"].shape[1:] == (48, 64)
    assert np.array_equal(target["masks"][0].numpy(), rle.decode(sample.masks[0]))
    assert data.categories[0] == {"id": 1, "name": "disc"}


def test_null_masks_are_skipped_and_empty_frames_kept(tmp_path, tiny_shapes_url):
    # One video, one track present in frame 0 only: frame 1 is a negative.
    source = YouTubeVISDataset(tiny_shapes_url)
    video = source.videos[0]
    track = source.tracks(video.id)[0]
    with open(f"{tiny_shapes_url}/instances.json") as handle:
        instances = json.load(handle)
    first = next(t for t, s in enumerate(track.segmentations) if s is not None)
    segmentations = [None] * video.length
    segmentations[first] = track.segmentations[first]
    instances["annotations"] = [
        {"id": 1, "video_id": video.id, "category_id": 2, "iscrowd": 0, "segmentations": segmentations}
    ]
    edited = tmp_path / "instances-one.json"
    edited.write_text(json.dumps(instances))
    samples = index_frames(YouTubeVISDataset(tiny_shapes_url, annotations=str(edited)))
    with_instances = [s for s in samples if s.masks]
    assert [(s.video_id, s.frame_index, s.category_ids) for s in with_instances] == [(video.id, first, (2,))]
    assert len(samples) == sum(v.length for v in source.videos)


def test_batch_indices_shuffle_each_epoch_and_are_reproducible():
    first_epoch = [i for step in range(5) for i in batch_indices(step, 2, 10, seed=3)]
    second_epoch = [i for step in range(5, 10) for i in batch_indices(step, 2, 10, seed=3)]
    assert sorted(first_epoch) == list(range(10)) == sorted(second_epoch)
    assert first_epoch != second_epoch
    assert batch_indices(7, 2, 10, seed=3) == second_epoch[4:6]
    assert batch_indices(0, 2, 10, seed=4) != batch_indices(0, 2, 10, seed=3)


def test_batches_cross_epoch_boundaries():
    indices = batch_indices(1, 4, 6, seed=0)  # positions 4..7: two from epoch 0, two from epoch 1
    assert len(indices) == 4 and all(0 <= i < 6 for i in indices)


def test_several_data_sets_are_one_after_another(tiny_shapes_url):
    single = FrameDetectionDataset(tiny_shapes_url)
    combined = open_frames([tiny_shapes_url, tiny_shapes_url], frame_stride=2)
    strided = len(index_frames(single.dataset, frame_stride=2))
    assert isinstance(combined, CombinedFrames) and len(combined) == 2 * strided
    for index in (0, strided - 1, strided, 2 * strided - 1):
        local = index % strided
        image, masks, labels = combined.raw(index)
        expected = combined.datasets[0].raw(local)
        assert torch.equal(image, expected[0]) and torch.equal(masks, expected[1]) and torch.equal(labels, expected[2])
    assert torch.equal(combined[strided][0], combined.datasets[1][0][0])
    assert combined.categories == single.categories
    with pytest.raises(IndexError, match="out of range"):
        combined.raw(2 * strided)


def test_one_url_in_a_list_is_that_data_set(tiny_shapes_url):
    assert isinstance(open_frames([tiny_shapes_url]), FrameDetectionDataset)
    assert isinstance(open_frames(tiny_shapes_url), FrameDetectionDataset)


def test_data_sets_with_other_categories_are_refused(tmp_path, tiny_shapes_url):
    with open(f"{tiny_shapes_url}/instances.json") as handle:
        instances = json.load(handle)
    instances["categories"] = [dict(c, name=c["name"].upper()) for c in instances["categories"]]
    renamed = tmp_path / "renamed.json"
    renamed.write_text(json.dumps(instances))
    other = FrameDetectionDataset(tiny_shapes_url)
    other.dataset = YouTubeVISDataset(tiny_shapes_url, annotations=str(renamed))
    with pytest.raises(DatasetError, match="renamed-set.*share category ids and names"):
        CombinedFrames([FrameDetectionDataset(tiny_shapes_url), other], [tiny_shapes_url, "renamed-set"])
