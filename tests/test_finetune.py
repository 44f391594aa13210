"""Fine-tuning the encoder on English + XITE rows, on a tiny randomly initialised BERT built here
(offline, seconds): mixing endpoints, gradients through both paths, the loop, resume, model dir."""

import dataclasses
import json

import numpy as np
import pytest
import torch

from xite.errors import ConfigError, XiteError
from xite.finetuning import (EncoderClassifier, FinetuneOptions, LabeledRows, PairSet, TorchProjection, XiteSource,
                           train_encoder, load_finetuned)
from xite.finetuning.model import run_batched
from xite.projectors.base import Projection

POS = ["good", "great", "fine", "nice", "love"]
NEG = ["bad", "awful", "poor", "sad", "hate"]
# The "target language": other words for the same two classes.
POS_T = ["bon", "bien", "joli"]
NEG_T = ["mal", "triste", "nul"]
FILL = ["the", "a", "film", "food", "was", "it", "is", "very", "so", "and"]


def _vocab():
    specials = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
    letters = list("abcdefghijklmnopqrstuvwxyz")
    return specials + POS + NEG + POS_T + NEG_T + FILL + letters + ["##" + c for c in letters]


@pytest.fixture(scope="session")
def tiny_dir(tmp_path_factory):
    from transformers import BertConfig, BertModel, BertTokenizerFast

    path = tmp_path_factory.mktemp("tiny-bert")
    vocab = _vocab()
    tokenizer = BertTokenizerFast(vocab={w: i for i, w in enumerate(vocab)}, model_max_length=64)
    torch.manual_seed(0)
    config = BertConfig(vocab_size=len(vocab), hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
                        intermediate_size=64, max_position_embeddings=64)
    BertModel(config, add_pooling_layer=False).save_pretrained(str(path))
    tokenizer.save_pretrained(str(path))
    return path


def _options(tiny_dir, **kw):
    base = dict(encoder=f"hf:{tiny_dir}", device="cpu", batch_size=8, max_length=32, lr_encoder=1e-3, lr_head=1e-2,
                warmup_ratio=0.0, eval_batch_size=32)
    return FinetuneOptions(**{**base, **kw})


def _sentences(rng, n, pos_words, neg_words):
    texts, labels = [], []
    for i in range(n):
        label = i % 2
        word = rng.choice(pos_words if label == 0 else neg_words)
        fill = rng.choice(FILL, size=rng.integers(1, 5))
        words = list(fill) + [word]
        rng.shuffle(words)
        texts.append(" ".join(words))
        labels.append(label)
    return texts, np.asarray(labels)


def _english(n=48, seed=0):
    texts, labels = _sentences(np.random.default_rng(seed), n, POS, NEG)
    return LabeledRows(texts, None, labels, ["positive", "negative"])


def _targets(n=24, seed=1):
    return _sentences(np.random.default_rng(seed), n, POS_T, NEG_T)[0]


def _xite(targets, english, lam=0.5, rank=2, oracle=False):
    """Retrieval by the current model (top-1 cosine), adoption of the neighbour's label, and a
    PCA-style basis over the languages' embeddings: what the pipeline's stages will provide.
    ``oracle``: retrieve among the English rows of the target's true class (a clean toy task)."""
    calls = {"pairs": 0, "projection": 0}
    truth = np.arange(len(targets)) % 2  # _sentences alternates the classes

    def make_pairs(embed_fn):
        calls["pairs"] += 1
        sim = embed_fn(targets) @ embed_fn(english.rows).T
        if oracle:
            sim = np.where(truth[:, None] == english.labels[None, :], sim, -np.inf)
        nn = sim.argmax(axis=1)
        return PairSet(np.arange(len(targets)), nn, english.labels[nn], np.full(len(targets), lam))

    def make_projection(by_language):
        calls["projection"] += 1
        assert set(by_language) == {"en", "xx"}
        x = np.concatenate(list(by_language.values())).astype(np.float64)
        _, _, vt = np.linalg.svd(x - x.mean(0), full_matrices=False)
        return Projection(vt[:rank].T.astype(np.float32), x.mean(0).astype(np.float32), "keep")

    return XiteSource(targets, ["xx"] * len(targets), make_pairs, make_projection), calls


@pytest.fixture(scope="module")
def classifier(tiny_dir):
    from xite.encoders._transformers import load_model

    encoder, tokenizer = load_model(tiny_dir)
    torch.manual_seed(0)
    return EncoderClassifier(encoder, tokenizer, 2, pooling="mean", prefix="passage: ", max_length=32).eval()


# ---------------------------------------------------------------------------------------------
# The model


@pytest.mark.parametrize("mix_at", ["pooled", "layer:0", "layer:1", "layer:2"])
def test_lambda_endpoints_give_the_target_or_the_source_path(classifier, mix_at):
    # Different lengths on both sides, so the union mask and padding are exercised.
    target = classifier.batch(["bon film", "mal", "the food was very bien and joli"])
    source = classifier.batch(["it was so good and the film is great", "bad food", "nice"])
    with torch.no_grad():
        lt, ls = classifier.logits(target), classifier.logits(source)
        at_one = classifier.mixed_logits(target, source, 1.0, None, mix_at)
        at_zero = classifier.mixed_logits(target, source, torch.zeros(3), None, mix_at)
        half = classifier.mixed_logits(target, source, 0.5, None, mix_at)
    torch.testing.assert_close(at_one, lt, atol=1e-5, rtol=1e-4)
    torch.testing.assert_close(at_zero, ls, atol=1e-5, rtol=1e-4)
    assert not torch.allclose(half, lt, atol=1e-3) and not torch.allclose(half, ls, atol=1e-3)


def test_pooled_mix_is_project_interpolate_of_the_two_embeddings(classifier):
    from xite.ops import reference

    target, source = classifier.batch(["bon film", "mal"]), classifier.batch(["good", "the film was bad"])
    basis = torch.linalg.qr(torch.randn(32, 3, generator=torch.Generator().manual_seed(0)))[0]
    proj = TorchProjection(basis, torch.full((32,), 0.01), "remove")
    lam = torch.tensor([0.3, 0.8])
    with torch.no_grad():
        et, es = classifier.embed(target), classifier.embed(source)
        expected = classifier.classify(reference.project_interpolate(et, es, torch.arange(2), lam, basis, proj.mean, "remove"))
        got = classifier.mixed_logits(target, source, lam, proj, "pooled")
    torch.testing.assert_close(got, expected, atol=1e-5, rtol=1e-4)


@pytest.mark.parametrize("mix_at", ["pooled", "layer:1"])
def test_gradient_reaches_the_encoder_through_both_paths(tiny_dir, mix_at):
    from xite.encoders._transformers import load_model

    encoder, tokenizer = load_model(tiny_dir)
    model = EncoderClassifier(encoder, tokenizer, 2, max_length=32)
    target, source = model.batch(["bon", "mal"]), model.batch(["good", "bad"])
    basis = torch.linalg.qr(torch.randn(32, 4, generator=torch.Generator().manual_seed(1)))[0]
    logits = model.mixed_logits(target, source, 0.5, TorchProjection(basis, None, "keep"), mix_at)
    torch.nn.functional.cross_entropy(logits, torch.tensor([0, 1])).backward()
    grad = model.encoder.get_input_embeddings().weight.grad
    vocab = tokenizer.get_vocab()
    for word in ("bon", "mal", "good", "bad"):  # each word occurs on one side only
        assert grad[vocab[word]].abs().sum() > 0, word
    assert grad[vocab["love"]].abs().sum() == 0  # and a word in neither batch gets none
    assert model.encoder.encoder.layer[-1].output.dense.weight.grad.abs().sum() > 0


def test_layer_mix_rejects_a_layer_past_the_last(classifier):
    batch = classifier.batch(["good"])
    with pytest.raises(ConfigError, match="mix_at"):
        classifier.mixed_logits(batch, batch, 0.5, None, "layer:3")


def test_embed_at_layer_is_the_mean_of_the_token_states(classifier):
    batch = classifier.batch(["good film", "the food was bad"])
    with torch.no_grad():
        hidden = classifier.encoder(input_ids=batch.input_ids, attention_mask=batch.attention_mask,
                                    output_hidden_states=True).hidden_states[1]
        mask = batch.attention_mask.unsqueeze(-1).float()
        torch.testing.assert_close(classifier.embed_at(batch, "layer:1"), (hidden * mask).sum(1) / mask.sum(1), atol=1e-5, rtol=1e-4)
        torch.testing.assert_close(classifier.embed_at(batch, "pooled"), classifier.embed(batch))


# ---------------------------------------------------------------------------------------------
# Options


@pytest.mark.parametrize("bad, name", [
    (dict(lr_encoder=0), "lr_encoder"), (dict(schedule="later"), "schedule"), (dict(replay=1.0), "replay"),
    (dict(mix_at="layer:x"), "mix_at"), (dict(batch_size=0), "batch_size"), (dict(max_steps=0), "max_steps"),
    (dict(warmup_ratio=1.5), "warmup_ratio"), (dict(freeze_embeddings="yes"), "freeze_embeddings"),
    (dict(head_init="zeros"), "head_init"),
])
def test_bad_options_name_the_option(bad, name):
    with pytest.raises(ConfigError, match=f"option {name}"):
        FinetuneOptions(**bad)


def test_adapt_needs_an_init_model(tiny_dir, tmp_path):
    english = _english(8)
    xite, _ = _xite(_targets(4), english)
    with pytest.raises(ConfigError, match="init="):
        train_encoder(english, None, xite, _options(tiny_dir, schedule="adapt"), tmp_path / "m", progress=False)


# ---------------------------------------------------------------------------------------------
# The loop


def test_loss_falls_on_a_separable_task_with_xite_rows(tiny_dir, tmp_path):
    english, dev = _english(24), _english(16, seed=5)
    xite, calls = _xite(_targets(16), english, oracle=True)
    losses = []
    log = lambda e: losses.append(e["loss"]) if e["event"] == "step" else None  # noqa: E731
    # Random word vectors carry no meaning: this toy task needs them trained.
    options = _options(tiny_dir, epochs=5, mix_at="layer:1", refresh_pairs=True, freeze_embeddings=False, lr_encoder=3e-3, lr_head=3e-2)
    model = train_encoder(english, dev, xite, options, tmp_path / "m", progress=False, log=log)
    assert len(losses) == 5 * 5  # 40 rows / 8 per batch, five epochs
    assert np.mean(losses[-5:]) < 0.65 * np.mean(losses[:5])
    assert calls == {"pairs": 5, "projection": 1}  # pairs each epoch, projection once
    assert model.training["dev_accuracy"] >= 0.8
    history = model.training["history"]
    assert [h["epoch"] for h in history] == list(range(1, 6))
    best = max(history, key=lambda h: h["dev_accuracy"])
    assert model.training["best_epoch"] == best["epoch"]
    assert model.training["projection"]["rank"] == 2
    assert not (tmp_path / "m" / "checkpoint").exists()


def test_max_steps_gives_equal_steps_for_every_arm(tiny_dir, tmp_path):
    english = _english(8)
    xite, _ = _xite(_targets(12), english)
    for name, source in (("zero-shot", None), ("xite", xite)):
        steps = []
        train_encoder(english, None, source, _options(tiny_dir, max_steps=5, batch_size=4), tmp_path / name, progress=False,
                 log=lambda e: steps.append(e["step"]) if e["event"] == "step" else None)
        assert steps == list(range(1, 6)), name  # 8 English rows run out after 2 steps: cycled


def test_probe_init_is_the_head_level_linear_fit_on_the_starting_encoder(tiny_dir, classifier):
    from xite.finetuning.loop import fit_probe
    from xite.finetuning.model import run_batched
    from xite.training.heads import HeadOptions, fit_module

    english, dev = _english(48), _english(24, seed=5)
    embed = lambda rows: run_batched(classifier, classifier.tokenize(rows), classifier.embed)  # noqa: E731
    x, x_dev = embed(english.rows), embed(dev.rows)
    expected, report = fit_module(x, english.labels, 2, HeadOptions(seed=3), x_dev, dev.labels)
    head_before = classifier.head.weight.detach().clone()
    try:
        got = fit_probe(classifier, english, dev, _options(tiny_dir, seed=3, head_init="probe"), x, x_dev)
        torch.testing.assert_close(classifier.head.weight, expected.weight)
        torch.testing.assert_close(classifier.head.bias, expected.bias)
        assert got.dev_accuracy == report.dev_accuracy
        logits = run_batched(classifier, classifier.tokenize(dev.rows), classifier.logits)
        # The classifier now scores dev as the probe chose it: English dev selected its epoch.
        assert float((logits.argmax(1) == dev.labels).mean()) == pytest.approx(report.dev_accuracy)
    finally:
        with torch.no_grad():
            classifier.head.weight.copy_(head_before)


def test_probe_and_first_projection_fit_share_one_pass_over_the_english_rows(tiny_dir, tmp_path, monkeypatch):
    english, dev, targets = _english(24), _english(16, seed=5), _targets(12)
    xite, _ = _xite(targets, english)
    fixed = PairSet(np.arange(len(targets)), np.arange(len(targets)) % len(english),
                    english.labels[np.arange(len(targets)) % len(english)], np.full(len(targets), 0.5))
    xite = dataclasses.replace(xite, make_pairs=lambda embed_fn: fixed)  # pairs without embedding
    seen, english_at_fit = [], {}
    real_embed, real_project = EncoderClassifier.embed, xite.make_projection

    def counting_embed(self, batch):
        seen.append(batch.input_ids.shape[0])
        return real_embed(self, batch)

    def recording_projection(by_language):
        english_at_fit["x"] = by_language["en"]
        return real_project(by_language)

    monkeypatch.setattr(EncoderClassifier, "embed", counting_embed)
    xite = dataclasses.replace(xite, make_projection=recording_projection)
    events = []

    def log(e):
        events.append(e)
        if e["event"] == "projection":
            english_at_fit["rows"] = sum(seen)  # rows embedded up to the first projection fit, before step 1

    train_encoder(english, dev, xite, _options(tiny_dir, max_steps=1, head_init="probe"), tmp_path / "m",
                  progress=False, log=log)
    # English once (probe and projection), dev once (probe), the targets once (projection).
    assert english_at_fit["rows"] == len(english) + len(dev) + len(targets)
    # What the projection was fitted on is still the starting encoder's English embeddings.
    from xite.finetuning.loop import starting_module

    module = starting_module(_options(tiny_dir), 2)[0].eval()
    torch.testing.assert_close(torch.from_numpy(english_at_fit["x"]),
                               torch.from_numpy(run_batched(module, module.tokenize(english.rows), module.embed)))


def test_probe_runs_before_the_first_step_and_its_dev_accuracy_is_recorded(tiny_dir, tmp_path):
    english, dev = _english(24), _english(16, seed=5)
    events = []
    model = train_encoder(english, dev, None, _options(tiny_dir, max_steps=2, head_init="probe"), tmp_path / "m",
                          progress=False, log=events.append)
    kinds = [e["event"] for e in events]
    assert kinds.index("probe") < kinds.index("step")
    probe = next(e for e in events if e["event"] == "probe")
    assert model.training["dev_accuracy_before"] == probe["dev_accuracy"] is not None
    assert model.options["head_init"] == "probe"
    # A model that starts from another one keeps that model's head: no probe.
    events.clear()
    train_encoder(english, dev, None, _options(tiny_dir, max_steps=1, head_init="probe"), tmp_path / "n", init=tmp_path / "m",
                  progress=False, log=events.append)
    assert "probe" not in [e["event"] for e in events]


def _interruptible_run(tiny_dir, out, interrupt_at=None, resume=False, **kw):
    """A short run with a checkpoint every 2 steps: (loss per step, the model)."""
    english, dev = _english(12), _english(8, seed=5)
    xite, _ = _xite(_targets(8), english)
    losses = {}

    def log(event):
        if event["event"] == "step":
            losses[event["step"]] = event["loss"]
            if event["step"] == interrupt_at:
                raise KeyboardInterrupt

    options = _options(tiny_dir, max_steps=5, checkpoint_every=2, batch_size=4, warmup_ratio=0.3, refit_projector=True,
                       mix_at="layer:0", **kw)
    return losses, train_encoder(english, dev, xite, options, out, resume=resume, progress=False, log=log)


def _losses_and_head(tiny_dir, out, **kw):
    losses, model = _interruptible_run(tiny_dir, out, **kw)
    return losses, model.module.head.weight.detach().clone()


def test_resumed_run_continues_exactly(tiny_dir, tmp_path):
    # Dropout is on (the tiny BERT's 0.1), so this also needs the RNG state restored; and an
    # identical resumed run is only possible when the loop is deterministic for a seed.
    full, head = _losses_and_head(tiny_dir, tmp_path / "a")
    with pytest.raises(KeyboardInterrupt):
        _losses_and_head(tiny_dir, tmp_path / "b", interrupt_at=3)  # 20 rows / 4: epoch 1 has 5 steps
    assert (tmp_path / "b" / "checkpoint" / "state.pt").is_file() and not (tmp_path / "b" / "config.json").exists()
    with pytest.raises(XiteError, match="unfinished run"):
        _losses_and_head(tiny_dir, tmp_path / "b")
    with pytest.raises(ConfigError, match="option lr_head"):
        _losses_and_head(tiny_dir, tmp_path / "b", resume=True, lr_head=0.5)
    rest, head_resumed = _losses_and_head(tiny_dir, tmp_path / "b", resume=True)
    assert sorted(rest) == [3, 4, 5]  # from the step-2 checkpoint
    for step in rest:
        assert rest[step] == pytest.approx(full[step], rel=1e-5, abs=1e-6), step
    torch.testing.assert_close(head_resumed, head)


def test_a_resumed_run_reports_the_seconds_of_the_part_before_the_resume(tiny_dir, tmp_path):
    whole = _interruptible_run(tiny_dir, tmp_path / "a")[1].training
    assert whole["resumed_at_step"] is None and whole["seconds_before_resume"] == 0.0 and whole["seconds"] > 0
    with pytest.raises(KeyboardInterrupt):
        _interruptible_run(tiny_dir, tmp_path / "b", interrupt_at=3)
    before = torch.load(tmp_path / "b" / "checkpoint" / "state.pt", weights_only=True)["progress"]["seconds"]
    assert before > 0
    resumed = _interruptible_run(tiny_dir, tmp_path / "b", resume=True)[1].training
    assert resumed["resumed_at_step"] == 2  # the step-2 checkpoint
    assert resumed["seconds_before_resume"] == round(before, 2)
    assert resumed["seconds"] > resumed["seconds_before_resume"]


# ---------------------------------------------------------------------------------------------
# Model directory, predict, evaluate, adapt


def _write_jsonl(path, rows):
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


def test_model_dir_loads_with_plain_transformers_and_predict_agrees_with_evaluate(tiny_dir, tmp_path):
    from transformers import AutoModel

    import xite
    from xite.prediction import predict

    english, dev = _english(32), _english(12, seed=5)
    out = tmp_path / "model"
    model = train_encoder(english, dev, None, _options(tiny_dir, epochs=2), out, progress=False)
    cfg = json.loads((out / "config.json").read_text())
    assert cfg["format"] == "xite-finetuned/1" and cfg["prefix"] == "" and cfg["options"]["epochs"] == 2
    assert cfg["label_names"] == english.label_names and cfg["pairs"] is False
    assert cfg["training"]["inputs"]["english"] == english.digest
    plain = AutoModel.from_pretrained(str(out / "encoder"))
    assert torch.equal(plain.encoder.layer[0].output.dense.weight, model.module.encoder.encoder.layer[0].output.dense.weight.cpu())

    test_texts, test_labels = _sentences(np.random.default_rng(9), 20, POS, NEG)
    test = _write_jsonl(tmp_path / "test.jsonl", [{"text": t, "label": english.label_names[y], "id": i}
                                                  for i, (t, y) in enumerate(zip(test_texts, test_labels))])
    rows = predict(out, test, out=tmp_path / "pred.jsonl", progress=False)
    written = [json.loads(line) for line in (tmp_path / "pred.jsonl").read_text().splitlines()]
    assert written == rows and [r["id"] for r in rows] == list(range(20))
    assert all(abs(sum(r["probabilities"].values()) - 1) < 1e-5 for r in rows)
    labels = np.asarray([english.label_names.index(r["label"]) for r in rows])
    np.testing.assert_array_equal(labels, load_finetuned(out).predict(test_texts))
    result = xite.evaluate(out, {"en": test}, progress=False)["en"]
    from xite.evaluation import metrics

    assert result["confusion"] == metrics(test_labels, labels, english.label_names)["confusion"]

    # adapt: start from that English model; English dev accuracy is logged before and after.
    xite_src, _ = _xite(_targets(18), english)
    events = []
    adapted = train_encoder(english, dev, xite_src, _options(tiny_dir, schedule="adapt", replay=0.25, max_steps=3), tmp_path / "adapted",
                       init=out, progress=False, log=events.append)
    before = [e for e in events if e["event"] == "dev_before"]
    assert before and before[0]["dev_accuracy"] == pytest.approx(model.training["dev_accuracy"])
    assert adapted.training["dev_accuracy_before"] == before[0]["dev_accuracy"]
    assert [e["rows"] for e in events if e["event"] == "step"] == [8, 8, 8]  # 2 English + 6 XITE per batch


def test_nli_pairs_are_cross_encoded(tiny_dir, tmp_path):
    from xite.prediction import predict

    rng = np.random.default_rng(3)
    first, second, labels = [], [], []
    for i in range(24):
        a = " ".join(rng.choice(FILL, size=3))
        first.append(a)
        second.append(a if i % 2 == 0 else "sad")
        labels.append(i % 2)
    english = LabeledRows(None, (first, second), np.asarray(labels), ["entailment", "contradiction"])
    targets = (["bon film", "mal"], ["bon film", "triste"])
    xite = XiteSource(targets, ["xx", "xx"], lambda embed: PairSet([0, 1], [0, 1], [0, 1], [0.5, 0.5]), lambda by: None)
    out = tmp_path / "nli"
    model = train_encoder(english, None, xite, _options(tiny_dir, max_steps=3), out, progress=False)
    tokens = model.module.tokenize((["good"], ["bad"]))
    assert tokens[0][1].count(1) >= 2  # the second text is segment 1 of the same sequence
    test = _write_jsonl(tmp_path / "t.jsonl", [{"premise": a, "hypothesis": b} for a, b in zip(first[:4], second[:4])])
    assert [r["label"] for r in predict(out, test, progress=False)] == [model.label_names[i] for i in model.predict((first[:4], second[:4]))]
    single = _write_jsonl(tmp_path / "s.jsonl", [{"text": "good"}])
    with pytest.raises(XiteError, match="holds single texts but the model takes text pairs"):
        predict(out, single, progress=False)
