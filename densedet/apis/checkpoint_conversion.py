"""Writing converted official checkpoints: the part every ``tools/convert/*_official_to_densedet.py`` shares."""
import os
import os.path as osp
from typing import Callable, Dict, Optional

import torch

from densedet.errors import BadCheckpointError
from densedet.models.utils import read_checkpoint

StateDict = Dict[str, torch.Tensor]


def check_against_config(state_dict: StateDict, config: str) -> None:
    """Loads ``state_dict`` into ``config``'s model; a missing or unexpected key is an error naming the keys."""
    from mmengine.config import Config
    from mmengine.registry import init_default_scope

    from densedet.registry import MODELS
    cfg = Config.fromfile(config)
    init_default_scope(cfg.get('default_scope', 'mmseg'))
    model = MODELS.build(cfg.model)
    missing, unexpected = model.load_state_dict(state_dict, strict=False)
    if missing or unexpected:
        raise BadCheckpointError(f'converted checkpoint does not match {config}: missing {missing[:10]} '
                                 f'({len(missing)} in all), unexpected {unexpected[:10]} ({len(unexpected)} in all)')


def convert_checkpoint(src: str, dst: str, converter: Callable[[StateDict], StateDict],
                       config: Optional[str] = None) -> StateDict:
    """Reads ``src`` (its optimizer state dropped), maps its keys with ``converter``, checks them against
    ``config`` when given, and writes an mmengine checkpoint (``state_dict`` + ``meta``) atomically."""
    state_dict = converter(read_checkpoint(src))
    if config is not None:
        check_against_config(state_dict, config)
    os.makedirs(osp.dirname(osp.abspath(dst)), exist_ok=True)
    tmp = dst + '.tmp'
    torch.save(dict(state_dict=state_dict, meta=dict(converted_from=osp.basename(src))), tmp)
    os.replace(tmp, dst)
    return state_dict


def conversion_main(description: str, converter: Callable[[StateDict], StateDict], argv=None) -> None:
    """The command line of a converter script: ``SRC DST [--config CONFIG]``."""
    import argparse
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument('src')
    parser.add_argument('dst')
    parser.add_argument('--config', help='check that the result loads into this config\'s model')
    args = parser.parse_args(argv)
    state_dict = convert_checkpoint(args.src, args.dst, converter, args.config)
    print(f'wrote {args.dst}: {len(state_dict)} tensors')
