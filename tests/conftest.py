"""Test set-up: headless Qt, deterministic torch, few threads."""

import os

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
os.environ.setdefault("RESTORELAB_NO_AUTOSAVE", "1")
# tiny test images: one BLAS/OpenMP thread avoids oversubscription overhead on 2 cores
os.environ.setdefault("OMP_NUM_THREADS", "1")

import numpy as np  # noqa: E402
import pytest  # noqa: E402


@pytest.fixture(autouse=True)
def _one_torch_thread():
    """Tiny test tensors: one torch thread (a second one only spins on an oversubscribed CPU)."""
    import torch

    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


@pytest.fixture
def rng() -> np.random.Generator:
    return np.random.default_rng(0)


@pytest.fixture(scope="session")
def camera_small() -> np.ndarray:
    """A 128x128 crop of scikit-image's camera image, float32 in [0, 1]."""
    from skimage import data

    return (data.camera()[100:228, 180:308] / 255.0).astype(np.float32)


@pytest.fixture(scope="session")
def astronaut_small() -> np.ndarray:
    """A 96x96 RGB crop of scikit-image's astronaut image, float32 in [0, 1]."""
    from skimage import data

    return (data.astronaut()[40:136, 180:276] / 255.0).astype(np.float32)
