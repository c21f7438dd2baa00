"""peftlab.DoctorCallback in a real Trainer (and TRL's SFTTrainer, where TRL is installed): a batch
whose image tokens were cut by truncation is stopped before step 1 with the doctor's finding; the
same run with whole batches trains. Each verdict is checked against running the model on the batch."""

from __future__ import annotations

import pytest
import torch
from families import llava
from peft import LoraConfig, get_peft_model

import peftlab
from peftlab.callback import DoctorStop

pytestmark = pytest.mark.filterwarnings("ignore")


class Rows(torch.utils.data.Dataset):
    """LLaVA rows: 16 image tokens then text, cut to ``length`` tokens (as max_length truncation does)."""

    def __init__(self, inputs: dict, length: int | None = None) -> None:
        self.inputs, self.length = inputs, length

    def __len__(self) -> int:
        return 4

    def __getitem__(self, i: int) -> dict:
        ids = self.inputs["input_ids"][i % 2]
        ids = ids[-self.length :] if self.length else ids  # left truncation keeps the text, cuts images
        mask = torch.ones_like(ids)
        return {
            "input_ids": ids,
            "attention_mask": mask,
            "pixel_values": self.inputs["pixel_values"][i % 2],
            "labels": ids.clone(),
        }


def _model_and_rows(truncated: bool):  # noqa: ANN202
    model, inputs = llava()
    wrapped = get_peft_model(model, LoraConfig(target_modules=r".*language_model.*\.(q_proj|v_proj)"))
    return wrapped, Rows(inputs, length=12 if truncated else None)


def _args(tmp_path, cls):  # noqa: ANN001, ANN202
    return cls(
        output_dir=str(tmp_path),
        max_steps=2,
        per_device_train_batch_size=2,
        learning_rate=1e-2,
        report_to=[],
        save_strategy="no",
        use_cpu=True,
        remove_unused_columns=False,
        logging_steps=1,
    )


def _lora_b(model: torch.nn.Module) -> torch.Tensor:
    return torch.cat([p.detach().flatten() for n, p in model.named_parameters() if "lora_B" in n])


@pytest.mark.parametrize("truncated", [True, False], ids=["truncated", "whole"])
def test_callback_in_a_trainer(tmp_path, truncated: bool) -> None:
    from transformers import Trainer, TrainingArguments

    model, rows = _model_and_rows(truncated)
    batch = torch.utils.data.default_collate([rows[0], rows[1]])
    try:  # what really happens on this batch, without the doctor
        model.train()(**batch)
        raised = None
    except ValueError as error:
        raised = str(error)
    assert (raised is not None) == truncated and (not raised or "do not match" in raised)
    trainer = Trainer(
        model=model,
        args=_args(tmp_path, TrainingArguments),
        train_dataset=rows,
        callbacks=[peftlab.DoctorCallback()],
    )
    if truncated:
        with pytest.raises(DoctorStop, match="inputs.image_tokens_vs_features"):
            trainer.train()
        assert trainer.state.global_step == 0 and not _lora_b(model).any()  # stopped before step 1
    else:
        trainer.train()
        assert trainer.state.global_step == 2 and _lora_b(model).any()


def _tokenizer():  # noqa: ANN202
    from tokenizers import Tokenizer, models
    from transformers import PreTrainedTokenizerFast

    vocab = {f"t{i}": i for i in range(99)}
    tok = PreTrainedTokenizerFast(tokenizer_object=Tokenizer(models.WordLevel(vocab, unk_token="t3")))
    tok.pad_token, tok.eos_token = "t0", "t2"
    return tok


@pytest.mark.parametrize("truncated", [True, False], ids=["truncated", "whole"])
def test_callback_in_trl_sft_trainer(tmp_path, truncated: bool) -> None:
    trl = pytest.importorskip("trl")
    from datasets import Dataset

    model, rows = _model_and_rows(truncated)
    data = Dataset.from_list([{k: v.tolist() for k, v in rows[i].items()} for i in range(len(rows))])
    args = _args(tmp_path, trl.SFTConfig)
    args.dataset_kwargs = {"skip_prepare_dataset": True}

    def collate(examples: list[dict]) -> dict:
        return {k: torch.tensor([e[k] for e in examples]) for k in examples[0]}

    trainer = trl.SFTTrainer(
        model=model,
        args=args,
        train_dataset=data,
        data_collator=collate,
        processing_class=_tokenizer(),
        callbacks=[peftlab.DoctorCallback()],
    )
    if truncated:
        with pytest.raises(DoctorStop, match="inputs.image_tokens_vs_features"):
            trainer.train()
        assert trainer.state.global_step == 0 and not _lora_b(model).any()
    else:
        trainer.train()
        assert trainer.state.global_step == 2 and _lora_b(model).any()
