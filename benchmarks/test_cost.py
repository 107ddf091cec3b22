"""Cost: parameters and MACs of every registered restorer and denoiser, beside the published figures."""

from __future__ import annotations

import pytest

from swintormer.diffusion.config import DenoiserConfig
from swintormer.models.config import RestorerConfig
from swintormer.profiling import profile_variant
from swintormer.registry import list_models, prior_components
from swintormer.tiling import plan_tiles

#: Figures of the reference code as measured and of the paper's table (docs/architecture.md, "Reference facts").
REFERENCE = {
    "swintormer-dpdd": {"params": 25_177_224, "thop_macs_256": 28.22e9, "fvcore_macs_256": 33.33e9,
                        "paper_params": 154.89e6, "paper_macs": 8.02e9},
    "restormer-defocus-single": {"params": 26_126_644, "thop_macs_256": 140.99e9},
    "restormer-defocus-dual": {"params": 26_132_548, "paper_params": 26.13e6, "paper_macs": 18.70e9},
    "ldm-bsr": {"params_approx": 113.62e6},
}
WHOLE_IMAGE = (1120, 1680)  # a DPDD test image


def _tiles(size: tuple[int, int], tile: int, stride: int) -> int:
    return len(plan_tiles(*size, tile, stride).origins)


def test_cost_of_every_variant(record):
    rows = {}
    for name in sorted(list_models(RestorerConfig)) + sorted(list_models(DenoiserConfig)):
        rows[name] = {}
        for size in (256, 512):
            reports = profile_variant(name, size)
            main = reports["model"]
            entry = {"params": main.params, "thop_macs": main.thop_macs, "fvcore_macs": main.fvcore_macs}
            for role, r in reports.items():
                if role != "model":
                    entry[f"{role}_fvcore_macs"] = r.fvcore_macs
                    entry[f"{role}_params"] = r.params
            rows[name][str(size)] = entry
    tiling = {}
    mp = WHOLE_IMAGE[0] * WHOLE_IMAGE[1] / 1e6
    for name in ("swintormer-dpdd", "swintormer-tiny", "restormer-defocus-single", "swintormer-tiny-prior"):
        for tile, stride in ((256, 220), (512, 220), (256, 256), (512, 440)):
            n = _tiles(WHOLE_IMAGE, tile, stride)
            per_tile = rows[name][str(tile)]["fvcore_macs"]
            tiling[f"{name}@{tile}/{stride}"] = {
                "tiles": n, "gmacs_per_megapixel": n * per_tile / mp / 1e9,
                "overlap_overhead": n * tile * tile / (WHOLE_IMAGE[0] * WHOLE_IMAGE[1]) - 1,
                "prior_gmacs_per_megapixel_per_step": (
                    n * rows[name][str(tile)]["denoiser_per_step_fvcore_macs"] / mp / 1e9 if prior_components(name) else None
                ),
            }
    record("cost", {"variants": rows, "tiling": tiling, "whole_image": list(WHOLE_IMAGE), "reference": REFERENCE,
                    "conventions": {"thop": "conv + linear + norm layers (4 ops/element)",
                                    "fvcore": "conv + linear + attention matmuls + norm layers (5 ops/element)"}})
    for name, ref in REFERENCE.items():
        got = rows[name]["256"]
        if "params" in ref:
            assert got["params"] == ref["params"], name
        if "params_approx" in ref:
            assert abs(got["params"] / ref["params_approx"] - 1) < 0.02, name
        for key in ("thop_macs_256", "fvcore_macs_256"):
            if key in ref:
                assert got[key.removesuffix("_256")] == pytest.approx(ref[key], rel=0.001), (name, key)
