"""tubelets: batch video instance segmentation on Apache Beam."""

__version__ = "0.1.0"
