"""Run in a fresh process: deblur one synthetic-size image with the default model, print peak RSS.

    python benchmarks/memory_probe.py WIDTH HEIGHT [--backend B] [--precision P] [--resize] [--save OUT.npy]

The image is a real photograph tiled up to the size (``--resize``: resized to it) so the model
sees real content, and kept as uint8 end to end, as the CLI does. ``seconds`` is the computation
(the tiled pass, first-call warm-up included), what ``swintormer deblur`` reports.
"""

from __future__ import annotations

import argparse
import json
import resource
import time

import numpy as np


def _peak_kb() -> int:
    """This process's peak RSS in KiB: ``VmHWM`` (ru_maxrss survives exec on Linux, so a probe
    started from a large parent would report the parent's peak)."""
    try:
        for line in open("/proc/self/status"):
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("width", type=int)
    p.add_argument("height", type=int)
    p.add_argument("--backend", default="torch")
    p.add_argument("--precision", default="fp32")
    p.add_argument("--threads", type=int, default=0)
    p.add_argument("--resize", action="store_true", help="resize the photograph to WIDTHxHEIGHT instead of tiling it")
    p.add_argument("--save", help="write the output (uint8 HxWx3) to this .npy file")
    args = p.parse_args()
    import torch
    from skimage import data

    from swintormer.backends import BackendRequest
    from swintormer.inference import tile_function
    from swintormer.model import DeblurModel
    from swintormer.tiling import TilingConfig, tiled_apply

    if args.threads:
        torch.set_num_threads(args.threads)
    model = DeblurModel.load()
    options = TilingConfig(batch=8)
    fn = tile_function(model, args.backend, options, BackendRequest(precision=args.precision, threads=args.threads))
    base = data.astronaut()
    if args.resize:
        from PIL import Image

        image = np.asarray(Image.fromarray(base).resize((args.width, args.height), Image.BICUBIC))
    else:
        reps = (-(-args.height // base.shape[0]), -(-args.width // base.shape[1]), 1)
        image = np.ascontiguousarray(np.tile(base, reps)[: args.height, : args.width])
    before = _peak_kb()
    start = time.perf_counter()
    out = tiled_apply(fn, image, 3, options, out_dtype=np.uint8, progress=False)
    elapsed = time.perf_counter() - start
    peak = _peak_kb()
    if args.save:
        np.save(args.save, out)
    print(json.dumps({"backend": args.backend, "precision": args.precision, "width": args.width, "height": args.height, "megapixels": args.width * args.height / 1e6,
                      "peak_rss_mb": peak / 1024, "rss_before_mb": before / 1024, "seconds": elapsed,
                      "out_shape": list(out.shape)}))


if __name__ == "__main__":
    main()
