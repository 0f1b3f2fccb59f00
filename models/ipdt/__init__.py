"""IPDT, the Instance-Pixel Dual Tracker ("Dual Embedding Learning for Video Instance Segmentation").

* :mod:`.model`: the heads (:class:`IPDT`): Siamese discriminator and correlator
  (:mod:`.siamese`), pixel embedding, global/local matching and the dynamic
  segmentation head (:mod:`.pixel`); box/mask geometry in :mod:`.geometry`;
* :mod:`.features`: the frozen detector's FPN as the shared backbone, per frame, bounded;
* :mod:`.propagation`: extending reference instances forward and backward, batched per frame;
* :mod:`.identity`: whether what a step would take is still the same object (colour at snaps
  and fills, relinking a stopped extension, proposals other tubelets hold), with
  :mod:`.appearance`'s mean colours;
* :mod:`.data`, :mod:`.losses`, :mod:`.train`: training on a YouTube-VIS data set;
* :mod:`.checkpoint`: tracker checkpoint files tied to their detector.

The trackers ``ipdt``, ``pixel`` and ``instance`` live in
:mod:`tubelets.models.trackers.ipdt`; merging in :mod:`tubelets.models.tubelet_merge`.
"""

from tubelets.models.ipdt.model import IPDT, FrameEncoding, IPDTConfig

__all__ = ["IPDT", "FrameEncoding", "IPDTConfig"]
