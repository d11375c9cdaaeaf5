"""helpers.training: the LoRA loop the training scripts share, and how adapters are saved."""
from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch

from helpers import training


class TinyLM(torch.nn.Module):
    """A next-token model small enough for a unit test: embedding -> linear head, transformers-style call."""

    def __init__(self, vocab: int = 11, width: int = 8) -> None:
        super().__init__()
        self.emb = torch.nn.Embedding(vocab, width)
        self.head = torch.nn.Linear(width, vocab)

    def forward(self, input_ids, attention_mask=None, labels=None):  # noqa: ANN001
        logits = self.head(self.emb(input_ids))
        loss = torch.nn.functional.cross_entropy(logits[:, :-1].reshape(-1, logits.shape[-1]), labels[:, 1:].reshape(-1),
                                                 ignore_index=-100)
        return SimpleNamespace(loss=loss, logits=logits)


def batch(step: int):
    ids = torch.tensor([[1, 2, 3, 4, 5, 6]])
    labels = ids.clone()
    labels[:, :2] = -100  # a "prompt" that is not trained
    return ids, labels, torch.ones_like(ids)


def test_lr_factor_warms_up_then_decays_to_five_percent():
    steps, warmup = 100, 10
    f = [training.lr_factor(s, steps, warmup) for s in range(steps)]
    assert f[0] == pytest.approx(0.1) and f[9] == pytest.approx(0.91)
    assert max(f) == f[9] and f[-1] == pytest.approx(0.05)


def test_train_steps_lowers_the_loss_and_leaves_eval_mode(capsys: pytest.CaptureFixture):
    torch.manual_seed(0)
    model = TinyLM()
    log = training.train_steps(model, batch, steps=30, lr=0.05, warmup=3, every=10)
    assert len(log) == 30 and log[-1] < 0.5 * log[0], log
    assert not model.training
    assert capsys.readouterr().out.count("step ") == 4  # steps 0, 10, 20 and the last


def test_train_steps_needs_trainable_parameters():
    model = TinyLM()
    for p in model.parameters():
        p.requires_grad_(False)
    with pytest.raises(ValueError, match="no trainable parameters"):
        training.train_steps(model, batch, steps=1, lr=0.1, warmup=1)


def test_save_adapter_names_the_base_by_hub_id(tmp_path: Path):
    from peft import LoraConfig, get_peft_model

    model = get_peft_model(TinyLM(), LoraConfig(r=2, target_modules=["head"]))
    training.save_adapter(model, tmp_path / "adapter", "org/base-model")
    config = json.loads((tmp_path / "adapter" / "adapter_config.json").read_text())
    assert config["base_model_name_or_path"] == "org/base-model"
    assert (tmp_path / "adapter" / "adapter_model.safetensors").is_file()
    assert not (tmp_path / "adapter" / "README.md").exists()


def test_pad_batch_pads_right_and_masks_padding():
    pairs = [(torch.tensor([5, 6, 7]), torch.tensor([-100, 6, 7])), (torch.tensor([8]), torch.tensor([8]))]
    ids, labels, mask = training.pad_batch(pairs, pad_id=0)
    assert ids.tolist() == [[5, 6, 7], [8, 0, 0]]
    assert labels.tolist() == [[-100, 6, 7], [8, -100, -100]]
    assert mask.tolist() == [[1, 1, 1], [1, 0, 0]]
