"""IPDT, the Instance-Pixel Dual Tracker ("Dual Embedding Learning for Video Instance Segmentation").

* :mod:`.model`: the heads (:class:`IPDT`): Siamese discriminator and correlator
  (:mod:`.siamese`), pixel embedding, global/local matching and the dynamic
  segmentation head (:mod:`.pixel`); box/mask geometry in :mod:`.geometry`;
* :mod:`.features`: the frozen detector's FPN as the shared backbone, per frame, bounded;
* :mod:`.propagation`: extending reference instances forward and backward, batched per frame:
  the paper's step (``Propagator.step``), then the rules of :mod:`.gates` in their documented order;
* :mod:`.gates`: each rule added to the paper's step (snapping to proposals, the holder check, fills,
  the unconfirmed guard, lost), one small tested function or class each;
* :mod:`.relinking`: a stopped forward extension continued by a new instance of its colour, with
  :mod:`.appearance`'s mean colours;
* :mod:`.oracle`: the injection point through which benchmarks put the truth in place of a decision;
* :mod:`.data`, :mod:`.losses`, :mod:`.train`: training on a YouTube-VIS data set;
* :mod:`.checkpoint`: tracker checkpoint files tied to their detector.

The trackers ``ipdt``, ``pixel`` and ``instance`` live in
:mod:`tubelets.models.trackers.ipdt`; merging in :mod:`tubelets.models.tubelet_merge`.
"""

from tubelets.models.ipdt.model import IPDT, FrameEncoding, IPDTConfig

__all__ = ["IPDT", "FrameEncoding", "IPDTConfig"]
