"""``peftlab doctor``: the doctor on a model folder (or Hub id) and an adapter config, before training.

Exit status: 0 when nothing will go wrong, 1 when something will, 2 on bad input.
"""

from __future__ import annotations

import argparse
import json
import sys

from peftlab.doctor import doctor
from peftlab.doctor.sources import has_weights, meta_model, peft_config
from peftlab.hub import OfflineError


def add_arguments(cmd: argparse.ArgumentParser) -> None:
    """The options of ``peftlab doctor``."""
    from peftlab.doctor.findings import CLASSES, class_count

    cmd.description = (
        f"The doctor on a model folder and an adapter config, before training: {class_count()} failure "
        f"classes ({', '.join(CLASSES.values())})."
    )
    cmd.add_argument("model", help="a folder written by save_pretrained (config.json), or a Hub id")
    cmd.add_argument("--peft-config", help="adapter folder or adapter_config.json about to be applied")
    cmd.add_argument(
        "--checkpoint", help="weights to load into the model (default: the folder's own, if any)"
    )
    cmd.add_argument("--adapter", help="a saved adapter folder about to be loaded onto the model")
    cmd.add_argument("--json", action="store_true", help="print the findings as JSON")


def main(args: argparse.Namespace) -> int:
    """``peftlab doctor``: 0 when nothing will go wrong, 1 when something will, 2 on bad input."""
    try:
        model = meta_model(args.model)
        config = peft_config(args.peft_config) if args.peft_config else None
    except (FileNotFoundError, OfflineError, ValueError, KeyError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    checkpoint = args.checkpoint or (args.model if has_weights(args.model) else None)
    diagnosis = doctor(model, config, checkpoint, adapter=args.adapter)
    print(json.dumps(diagnosis.as_dict(), indent=2) if args.json else diagnosis)
    return 0 if diagnosis.ok else 1
