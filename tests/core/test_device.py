"""The CPU thread policy of torch work: the free cores, used by the sampler for its run."""

from __future__ import annotations

import pytest
import torch

import restorelab.device as device
from restorelab.device import threads_for_work, torch_threads_for_work


@pytest.mark.parametrize("cores,busy,expected", [(2, 0.0, 2), (2, 0.4, 2), (2, 1.0, 1), (2, 11.0, 1),
                                                 (8, 3.0, 5), (1, 0.0, 1)])
def test_threads_are_the_free_cores(cores, busy, expected, monkeypatch):
    monkeypatch.delenv("RESTORELAB_THREADS", raising=False)
    assert torch_threads_for_work(cores=cores, busy=busy) == expected


def test_environment_overrides_and_is_checked(monkeypatch):
    monkeypatch.setenv("RESTORELAB_THREADS", "3")
    assert torch_threads_for_work(cores=2, busy=5) == 3
    monkeypatch.setenv("RESTORELAB_THREADS", "0")
    with pytest.raises(ValueError, match="positive integer"):
        torch_threads_for_work()


def test_sampler_runs_with_the_policy_and_restores_the_count(monkeypatch):
    from restorelab.denoise.base import Denoiser
    from restorelab.prior import sample

    monkeypatch.delenv("RESTORELAB_THREADS", raising=False)
    monkeypatch.setattr(device, "_usable_cores", lambda: 2)
    seen: list[int] = []

    class Shrink(Denoiser):
        name = "test-shrink"
        params = ()

        def denoise_tensor(self, y, sigma):
            seen.append(torch.get_num_threads())
            return 0.5 + 0.5 * (y - 0.5)

    for before, busy, want in ((2, 0.0, 2), (2, 1.0, 1), (1, 0.0, 1)):  # never above torch's setting
        torch.set_num_threads(before)
        seen.clear()
        monkeypatch.setattr(device, "_busy_elsewhere", lambda b=busy: b)
        sample(Shrink(), shape=(8, 8), max_iter=3, device="cpu")
        assert seen and set(seen) == {want}
        assert torch.get_num_threads() == before
    with threads_for_work(2) as k:
        assert k == 2 and torch.get_num_threads() == 2
    assert torch.get_num_threads() == 1
