"""Torch modules, training and checkpoints. No Beam imports here."""
