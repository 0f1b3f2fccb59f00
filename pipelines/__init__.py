"""Beam pipeline construction and ``run()`` entry points."""
