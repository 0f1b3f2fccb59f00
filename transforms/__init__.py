"""Beam PTransforms and DoFns."""
