"""The ``tubelets`` distribution.

The repository keeps the layout the project asked for (``pipelines/``,
``transforms/``, ``models/``, ``configs/`` at the top) but installs them as
``tubelets.pipelines`` and so on, so that nothing generic like ``models``
lands at the top of a user's site-packages. The same file installs the
package on Dataflow workers (``--setup_file ./setup.py``).
"""

import pathlib
import re

from setuptools import find_packages, setup

ROOT = pathlib.Path(__file__).parent
VERSION = re.search(r'__version__ = "([^"]+)"', (ROOT / "tubelets" / "__init__.py").read_text()).group(1)
MAPPED_FOLDERS = ("pipelines", "transforms", "models", "configs")


def mapped_packages():
    """Packages of the mapped folders, named under ``tubelets.`` and their folders."""
    packages, package_dir = [], {}
    for folder in MAPPED_FOLDERS:
        for sub in [""] + find_packages(where=folder):
            name = f"tubelets.{folder}" + (f".{sub}" if sub else "")
            packages.append(name)
            package_dir[name] = folder + ("/" + sub.replace(".", "/") if sub else "")
    return packages, package_dir


packages, package_dir = mapped_packages()

setup(
    name="tubelets",
    version=VERSION,
    description="Batch video instance segmentation on Apache Beam (IPDT tubelets to Parquet)",
    long_description=(ROOT / "README.md").read_text(encoding="utf-8"),
    long_description_content_type="text/markdown",
    python_requires=">=3.10",
    packages=find_packages(include=["tubelets", "tubelets.*"]) + packages,
    package_dir=package_dir,
    package_data={"tubelets.configs": ["*.yaml"], "tubelets.models": ["checkpoints/*.pt", "checkpoints/*.md"]},
    install_requires=[
        "apache-beam[gcp]>=2.76",
        "torch>=2.4",
        "torchvision>=0.19",
        "ffmpeg-python>=0.2",
        "imageio-ffmpeg>=0.5",
        "numpy>=1.24",
        "pyarrow>=14",
        "fsspec>=2023.6",
        "gcsfs>=2023.6",
        "pycocotools>=2.0.7",
        "duckdb>=1.0",
        "scipy>=1.10",
        "pyyaml>=6",
        "pydantic>=2.5",
        "psutil>=5.9",  # ends the local runner's worker processes when a run is interrupted
        "pillow>=10",
        "tqdm>=4.60",
        "matplotlib>=3.7",  # the charts of `tubelets report` (drawn by Agg: no display needed)
    ],
    extras_require={
        # `--runner dask`: Beam's Dask runner, on a LocalCluster or a `dask scheduler` (--dask-address).
        "dask": ["apache-beam[dask]>=2.76", "dask[distributed]>=2024.4.2"],
        # scikit-image and OpenCV only build the reference implementations the metrics are checked against;
        # the pipeline tests run on Dask too.
        "test": ["pytest>=8", "pytest-xdist>=3", "scikit-image>=0.22", "opencv-python-headless>=4.8",
                 "apache-beam[dask]>=2.76", "dask[distributed]>=2024.4.2", "ruff>=0.6"],
    },
    entry_points={"console_scripts": ["tubelets=tubelets.cli:main"]},
)
