"""Head-level zero-shot accuracy with fp32 vs int8 e5-small vectors on the sentiment task, seeds
0-2: does the int8 fast path change what a classifier on its vectors gets right?

    XITE_HOME=.xite-test-home .venv/bin/python benchmarks/int8_accuracy.py [DATA_DIR]
"""
import json, sys, time
import xite

D = (sys.argv[1] if len(sys.argv) > 1 else "../shared/data") + "/sentiment"
tests = {lang: f"{D}/{lang}/test.jsonl" for lang in ("en", "ko", "ar", "hi", "ur")}
out = {}
for precision in ("fp32", "int8"):
    for seed in (0, 1, 2):
        t = time.time()
        model = xite.train(f"{D}/en/train.jsonl", dev=f"{D}/en/dev.jsonl", encoder="e5-small",
                           encoder_options={"precision": precision}, seed=seed, progress=False)
        res = xite.evaluate(model, tests, progress=False)
        out[f"{precision}/{seed}"] = {lang: r["accuracy"] for lang, r in res.items()}
        print(precision, seed, {k: round(v * 100, 2) for k, v in out[f"{precision}/{seed}"].items()}, f"{time.time() - t:.0f}s", flush=True)
print(json.dumps(out))
for lang in tests:
    f = sum(out[f"fp32/{s}"][lang] for s in (0, 1, 2)) / 3
    i = sum(out[f"int8/{s}"][lang] for s in (0, 1, 2)) / 3
    print(f"{lang}: fp32 {f*100:.2f} int8 {i*100:.2f} delta {(i-f)*100:+.2f}")
