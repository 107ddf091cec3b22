"""``swintormer synth``: write a synthetic defocus dataset in the DPDD layout from the bundled photographs."""

from __future__ import annotations

import argparse
import logging

log = logging.getLogger(__name__)


def register(subparsers: argparse._SubParsersAction) -> None:
    from swintormer.data.photos import MAX_SIDE
    from swintormer.data.synthetic import TEST_LEVELS

    p = subparsers.add_parser(
        "synth",
        help="write a synthetic DPDD-layout dataset (real photographs, physically modelled defocus)",
        description="Defocus the photographs Python packages ship (scikit-image's; PyWavelets', scikit-learn's and "
        "matplotlib's for the train split) (depth-varying disk PSFs, dual-pixel half-aperture "
        "views, sensor noise, quantisation) and write OUT/<split>/{inputC,inputL,inputR,target}/*.png (16-bit) "
        "plus categories.json. The test split holds photographs never used for training.",
    )
    p.add_argument("-o", "--out", required=True, metavar="DIR", help="dataset root")
    p.add_argument("--split", choices=("test", "train", "both", "seen"), default="test",
                   help="which split(s) to write (default test; both = train and test; seen = the test split's blur levels "
                        "on the training photographs, to compare with test: how much a model learned its photographs)")
    p.add_argument("--levels", type=float, nargs="+", default=list(TEST_LEVELS), metavar="R",
                   help=f"test and seen splits: largest blur radii in pixels (default {' '.join(f'{v:g}' for v in TEST_LEVELS)})")
    p.add_argument("--variants", type=int, default=8, help="train split: realisations per photograph (default 8)")
    p.add_argument("--seed", type=int, default=0, help="seed of every realisation (default 0)")
    p.add_argument("--max-side", type=int, default=MAX_SIDE, help=f"downscale photographs to this long side first (default {MAX_SIDE})")
    p.add_argument("--no-dual-pixel", action="store_true", help="write only inputC and target")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from swintormer.data.writer import write_synthetic_split

    splits = ("train", "test") if args.split == "both" else (args.split,)
    for split in splits:
        write_synthetic_split(
            args.out, split, seed=args.seed, levels=args.levels, variants=args.variants,
            dual_pixel=not args.no_dual_pixel, max_side=args.max_side,
        )
    return 0
