"""Thread policy of the sampler, measured: ``python -m restorelab.bench.threads``.

Times Algorithm 2 (32² inpainting of a centred 12-pixel hole, the learned gray denoiser,
fixed seed and iteration count) with torch at 1 thread, at every usable core, and at the
policy's choice (:func:`restorelab.device.torch_threads_for_work`), first with the machine
as it is, then with ``--competitors`` CPU-bound processes started by this command. Prints
one line per run with the 1-minute load average, so a reader can judge how idle "idle" was.
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import os
import time


def _spin(stop: object) -> None:
    x = 0
    while not stop.is_set():  # type: ignore[attr-defined]
        for _ in range(100_000):
            x += 1


def _one_run(threads: int, iters: int) -> float:
    import numpy as np
    import torch

    from restorelab import denoise
    from restorelab.jobs import run_job
    from restorelab.prior import inverse_job, operators

    torch.set_num_threads(threads)
    rng = np.random.default_rng(0)
    img = rng.random((32, 32)).astype(np.float32)
    op = operators.make("inpaint", (32, 32), box=12)
    den = denoise.get("bfcnn", device="cpu")
    old = os.environ.get("RESTORELAB_THREADS")
    os.environ["RESTORELAB_THREADS"] = str(threads)  # the sampler's policy uses exactly this
    try:
        t0 = time.perf_counter()
        run_job(inverse_job(den, op, img, device="cpu", max_iter=iters, patience=iters, seed=0))
        return time.perf_counter() - t0
    finally:
        if old is None:
            del os.environ["RESTORELAB_THREADS"]
        else:
            os.environ["RESTORELAB_THREADS"] = old


def main(argv: list[str] | None = None) -> int:
    from restorelab.device import _usable_cores, torch_threads_for_work

    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--iters", type=int, default=150, help="sampler iterations per run")
    ap.add_argument("--competitors", type=int, default=1, help="CPU-bound processes for the loaded case")
    ap.add_argument("--out", default="", help="markdown file to write the table into (e.g. BENCHMARKS.md)")
    a = ap.parse_args(argv)
    rows: list[list[object]] = []
    cores = _usable_cores()
    _one_run(1, 5)  # warm-up: model load, allocator
    print(f"cores {cores}; {a.iters} iterations of Algorithm 2 on 32x32 (bfcnn gray, CPU)")
    for label, k in (("as is", 0), (f"+{a.competitors} CPU-bound", a.competitors)):
        stop = mp.Event()
        procs = [mp.Process(target=_spin, args=(stop,), daemon=True) for _ in range(k)]
        for p in procs:
            p.start()
        time.sleep(1.0 if k else 0.0)
        try:
            policy = torch_threads_for_work()
            for threads in sorted({1, cores, policy}):
                load = os.getloadavg()[0]
                t = _one_run(threads, a.iters)
                tag = " (policy)" if threads == policy else ""
                print(f"{label:>16}: {threads} thread(s){tag}: {t:6.2f} s   load average {load:.2f}")
                rows.append([label, threads, "yes" if threads == policy else "", f"{t:.2f}", f"{load:.2f}"])
        finally:
            stop.set()
            for p in procs:
                p.join()
    if a.out:
        from restorelab.bench.report import machine_line, markdown_table, write_section

        cmd = "python -m restorelab.bench.threads" + (f" --iters {a.iters}" if a.iters != 150 else "") + (
            f" --competitors {a.competitors}" if a.competitors != 1 else "") + f" --out {a.out}"
        text = (
            f"`{cmd}` — {a.iters} iterations of Algorithm 2 (32² inpainting, learned gray denoiser, "
            f"CPU) with torch at 1 thread, at every usable core ({cores}) and at the policy's choice "
            "(`restorelab.device.torch_threads_for_work`: the free cores), first on the machine as it "
            f"was, then beside {a.competitors} CPU-bound process(es) started by the command; the load "
            f"average is read before each run. {machine_line()}.\n\n"
            + markdown_table(["machine", "threads", "policy", "seconds", "1-min load"], rows)
        )
        write_section(a.out, "threads", text, "Sampler thread policy, idle and loaded")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
