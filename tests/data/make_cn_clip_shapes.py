"""Write cn_clip_shapes.json.gz: the tensor shapes of the five released Chinese-CLIP models, in the
original code's names, as the original code builds them (used by tests/test_chinese_clip_architecture.py).

The models are built from the configs shipped in the ``cn-clip`` package (cn_clip/clip/model_configs)
on PyTorch's meta device: no weights are downloaded or even allocated. Run once, by hand:

    pip install --no-deps --target /tmp/cnclip cn-clip six
    PYTHONPATH=/tmp/cnclip python tests/data/make_cn_clip_shapes.py

cn_clip's package imports torchvision for its image transforms; it plays no part in building a
model, so a stub stands in for it here.
"""

import gzip
import json
import sys
import types
from pathlib import Path

import torch

for name in ("torchvision", "torchvision.transforms"):  # only image transforms come from it
    stub = types.ModuleType(name)
    stub.__dict__.update({n: type(n, (), {}) for n in ("Compose", "ToTensor", "Normalize", "Resize")})
    stub.InterpolationMode = types.SimpleNamespace(BICUBIC=3)
    stub.transforms = stub
    sys.modules[name] = stub

from cn_clip.clip.model import CLIP  # noqa: E402

CONFIGS = Path(sys.modules["cn_clip.clip.model"].__file__).parent / "model_configs"
RELEASES = {  # the model card of github.com/OFA-Sys/Chinese-CLIP
    "clip_cn_rn50.pt": ("RN50", "RBT3-chinese"),
    "clip_cn_vit-b-16.pt": ("ViT-B-16", "RoBERTa-wwm-ext-base-chinese"),
    "clip_cn_vit-l-14.pt": ("ViT-L-14", "RoBERTa-wwm-ext-base-chinese"),
    "clip_cn_vit-l-14-336.pt": ("ViT-L-14-336", "RoBERTa-wwm-ext-base-chinese"),
    "clip_cn_vit-h-14.pt": ("ViT-H-14", "RoBERTa-wwm-ext-large-chinese"),
}

out = {}
for file, (vision, text) in RELEASES.items():
    info = {
        **json.loads((CONFIGS / f"{vision}.json").read_text()),
        **json.loads((CONFIGS / f"{text}.json").read_text()),
    }
    if isinstance(info["vision_layers"], str):
        info["vision_layers"] = json.loads(info["vision_layers"])
    with torch.device("meta"):
        model = CLIP(**info)
    out[file] = {
        "vision": vision,
        "text": text,
        "shapes": {k: list(v.shape) for k, v in model.state_dict().items()},
    }
    print(
        file,
        len(out[file]["shapes"]),
        "tensors",
        sum(v.numel() for v in model.state_dict().values()) / 1e6,
        "M",
    )
with gzip.open(Path(__file__).with_name("cn_clip_shapes.json.gz"), "wt") as f:
    json.dump(out, f, separators=(",", ":"))
