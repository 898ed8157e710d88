"""Reference side of bench_predict_job.py: ``kbert predict --input FILE`` as a user writes it with transformers.

    .venv-ref/bin/python benchmarks/hf_predict_job.py MODEL_DIR TEXTS.txt > results.jsonl
"""
import json
import sys

from transformers import pipeline

model, path = sys.argv[1:3]
texts = [line.rstrip("\r\n") for line in open(path, encoding="utf-8") if line.strip()]
classify = pipeline("text-classification", model=model, device="cpu")
for text, result in zip(texts, classify(texts, batch_size=32)):
    print(json.dumps({"text": text, "result": result}, ensure_ascii=False))
