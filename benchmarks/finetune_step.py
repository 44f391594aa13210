"""Seconds per optimizer step of encoder fine-tuning on e5-small, per kind of batch.

    XITE_HOME=... .venv/bin/python benchmarks/finetune_step.py [--device auto] [--steps 5] [--max-length 64]

Batches of 16 rows from the demo corpora (en, ko): an English batch (one forward), and XITE
batches mixed at the pooled embedding and after layer 6 (two forwards: target and source), each
forward + backward + AdamW step with the word embeddings frozen. Reports the median of
``--steps`` timed steps after one warm-up step.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from importlib import resources

import torch


def _demo(name: str) -> list[str]:
    text = resources.files("xite.demo").joinpath(f"{name}.jsonl").read_text(encoding="utf-8")
    return [json.loads(line)["text"] for line in text.splitlines() if line.strip()]


def main() -> None:
    from xite.encoders._transformers import load_model
    from xite.encoders.e5_small import E5SmallEncoder
    from xite.finetuning.model import EncoderClassifier, autocast, resolve_device

    ap = argparse.ArgumentParser()
    ap.add_argument("--device", default="auto")
    ap.add_argument("--steps", type=int, default=5)
    ap.add_argument("--max-length", type=int, default=64)
    ap.add_argument("--batch-size", type=int, default=16)
    args = ap.parse_args()

    device = resolve_device(args.device)
    e5 = E5SmallEncoder()
    encoder, tokenizer = load_model(e5.model_dir, device=str(device), spec="e5-small")
    model = EncoderClassifier(encoder, tokenizer, 2, prefix=e5.prefix, max_length=args.max_length).to(device).train()
    model.encoder.get_input_embeddings().weight.requires_grad_(False)
    params = [p for p in model.parameters() if p.requires_grad]
    opt = torch.optim.AdamW(params, lr=2e-5)
    b = args.batch_size
    en, ko = _demo("en")[:b], _demo("ko")[:b]
    labels = torch.arange(b, device=device) % 2

    def english_step():
        return model.logits(model.batch(en))

    def xite_step(mix_at):
        return lambda: model.mixed_logits(model.batch(ko), model.batch(en), 0.5, None, mix_at)

    print(f"e5-small on {device}, {b} rows x max_length {args.max_length}, {sum(p.numel() for p in params) / 1e6:.1f}M trainable, "
          f"{torch.get_num_threads()} threads")
    for name, fn in (("english", english_step), ("xite pooled", xite_step("pooled")), ("xite layer:6", xite_step("layer:6"))):
        times = []
        for i in range(args.steps + 1):
            if device.type == "cuda":
                torch.cuda.synchronize()
            start = time.perf_counter()
            with autocast(device):
                loss = torch.nn.functional.cross_entropy(fn().float(), labels)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            if device.type == "cuda":
                torch.cuda.synchronize()
            if i:  # the first step warms up allocators and kernels
                times.append(time.perf_counter() - start)
        print(f"{name:14s} {statistics.median(times):.3f} s/step  ({b / statistics.median(times):.1f} rows/s)")


if __name__ == "__main__":
    main()
