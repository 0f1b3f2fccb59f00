"""YAML configuration presets shipped with the package."""
