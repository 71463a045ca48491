"""Choose among cross-validated configs and their pairwise ensembles; write the inference recipe
(nnU-Net's ``find_best_configuration``).

    python tools/crossval.py CONFIG_A --save-probabilities      # each config, same splits.json
    python tools/crossval.py CONFIG_B --save-probabilities
    python tools/find_best_configuration.py work_dirs/A/crossval work_dirs/B/crossval --out recipe.json
    python tools/infer_volume.py --recipe recipe.json CASE.nii.gz ... --out-dir DIR

Every configuration and every pair (held-out probabilities averaged) is scored on the held-out
cases by the mean foreground Dice; the best gets largest-component post-processing decided on its
held-out predictions. Prints the scores behind the choice; the recipe names the configs, every
fold's checkpoint, the post-processing and the TTA.
"""
import argparse

import densedet  # noqa: F401
from densedet.apis.cli import run_tool
from densedet.apis.ensemble import choose_configuration, write_recipe


def main(argv=None):
    parser = argparse.ArgumentParser(description='Choose a configuration / ensemble and write the inference recipe')
    parser.add_argument('crossval_dirs', nargs='+', help='work dirs of tools/crossval.py (with crossval.json)')
    parser.add_argument('--out', default='recipe.json', help='the recipe (default: recipe.json)')
    parser.add_argument('--no-ensembles', action='store_true', help='score single configurations only')
    parser.add_argument('--no-tta', action='store_true', help='the recipe predicts without mirror TTA')
    parser.add_argument('--hd95', action='store_true', help='also score HD95 (slower; not used for the choice)')
    args = parser.parse_args(argv)
    choice = choose_configuration(args.crossval_dirs, with_hd95=args.hd95, ensembles=not args.no_ensembles)
    recipe = write_recipe(choice, args.out, tta=not args.no_tta)
    print(f'wrote {args.out}: {recipe["chosen"]}, {sum(len(m["checkpoints"]) for m in recipe["members"])} '
          f'checkpoint(s), largest component for {recipe["postprocessing"]["largest_component"] or "no class"}')
    return recipe


if __name__ == '__main__':
    run_tool(main)
