"""Backbones with a feature pyramid (FPN) for the Mask R-CNN presets.

Every backbone here returns an ``OrderedDict`` of pyramid levels with the keys
torchvision's detection heads expect: ``"0"`` (P2, stride 4), ``"1"`` (P3,
stride 8), ``"2"`` (P4, stride 16), ``"3"`` (P5, stride 32) and ``"pool"`` (P6,
stride 64, a max-pool of P5). Each level is a ``float32`` tensor
``[B, out_channels, ceil(H / stride), ceil(W / stride)]`` over the batch the
model's transform produced (normalised, resized, padded to a multiple of 32).
"""

from __future__ import annotations

from torch import nn
from torchvision.models.detection.backbone_utils import BackboneWithFPN, resnet_fpn_backbone
from torchvision.models.resnet import BasicBlock
from torchvision.ops.misc import Conv2dNormActivation, FrozenBatchNorm2d

PYRAMID_RETURN_LAYERS = {"layer1": "0", "layer2": "1", "layer3": "2", "layer4": "3"}


def group_norm(channels: int, groups: int = 8) -> nn.GroupNorm:
    """GroupNorm: from-scratch training runs with 2-4 images a batch, too few for BatchNorm statistics."""
    return nn.GroupNorm(min(groups, channels), channels)


class SmallConvNet(nn.Module):
    """A narrow residual net for CPUs: a stride-2 stem, then four stages of ``BasicBlock``.

    Stage ``i`` (``layer1`` .. ``layer4``) halves the resolution, so the stages
    sit at strides 4, 8, 16 and 32 with ``widths[i]`` channels each. Input is a
    normalised ``float32`` batch ``[B, 3, H, W]``.
    """

    def __init__(self, widths: tuple[int, ...] = (32, 64, 96, 128), blocks: tuple[int, ...] = (1, 2, 2, 1)):
        super().__init__()
        stem_width = widths[0] // 2
        self.stem = Conv2dNormActivation(3, stem_width, kernel_size=3, stride=2, norm_layer=group_norm)
        in_width = stem_width
        for index, (width, depth) in enumerate(zip(widths, blocks), start=1):
            self.add_module(f"layer{index}", self._stage(in_width, width, depth))
            in_width = width
        self.widths = tuple(widths)

    @staticmethod
    def _stage(in_width: int, width: int, depth: int) -> nn.Sequential:
        downsample = nn.Sequential(nn.Conv2d(in_width, width, 1, stride=2, bias=False), group_norm(width))
        layers = [BasicBlock(in_width, width, stride=2, downsample=downsample, norm_layer=group_norm)]
        layers += [BasicBlock(width, width, norm_layer=group_norm) for _ in range(depth - 1)]
        return nn.Sequential(*layers)

    def forward(self, images):
        features = self.stem(images)
        for name in PYRAMID_RETURN_LAYERS:
            features = getattr(self, name)(features)
        return features


def small_fpn_backbone(
    widths: tuple[int, ...] = (32, 64, 96, 128), blocks: tuple[int, ...] = (1, 2, 2, 1), fpn_channels: int = 64
) -> BackboneWithFPN:
    """``SmallConvNet`` under a ``fpn_channels``-wide FPN (levels P2-P6)."""
    body = SmallConvNet(widths, blocks)
    return BackboneWithFPN(body, PYRAMID_RETURN_LAYERS, list(widths), fpn_channels)


def resnet50_fpn_backbone(trainable_layers: int = 3) -> BackboneWithFPN:
    """ResNet-50 + FPN (256 channels), parameter for parameter torchvision's ``maskrcnn_resnet50_fpn``.

    The batch norms are frozen, as torchvision builds them whenever it starts
    from trained weights (the COCO checkpoint has no ``num_batches_tracked``
    buffers, and 1-2 images a GPU are too few for BatchNorm statistics). Their
    ``eps`` is 0, as torchvision sets it for its COCO weights; on weights
    trained from scratch (running variance 1) the difference is negligible.
    Nothing is downloaded: the backbone starts from random weights.
    """
    backbone = resnet_fpn_backbone(
        backbone_name="resnet50", weights=None, norm_layer=FrozenBatchNorm2d, trainable_layers=trainable_layers
    )
    for module in backbone.modules():
        if isinstance(module, FrozenBatchNorm2d):
            module.eps = 0.0
    return backbone

