#!/usr/bin/env bash
# Reproduces the bundled model (models/README.md): the KJV corpus, the BPE tokenizer, the ternary run and its
# full-precision twin (same architecture, same tokens), then the export to models/kjv-bitnet-2m.gguf.
# Usage: scripts/train_kjv.sh [--no-fp]   (needs build/release/bitnet; both runs together take ~25 min on 2 cores)
set -euo pipefail
cd "$(dirname "$0")/.."
bin=build/release/bitnet
[[ -x $bin ]] || { echo "train_kjv: build first (make release)" >&2; exit 1; }
scripts/kjv_corpus.sh build/kjv
nice $bin tokenizer-train build/kjv/train.txt --vocab-size 2048 -o models/kjv-tokenizer.json
nice $bin train -c models/kjv-ternary.json -t 1 > build/kjv/ternary.log 2>&1 &
ternary=$!
if [[ ${1:-} != --no-fp ]]; then
  nice $bin train -c models/kjv-fp.json -t 1 > build/kjv/fp.log 2>&1 &
  fp=$!
  wait "$fp"
  tail -n 1 build/kjv/fp.log
fi
wait "$ternary"
tail -n 1 build/kjv/ternary.log
$bin export build/runs/kjv-ternary -o models/kjv-bitnet-2m.gguf --hf build/runs/kjv-ternary-hf
$bin run -m models/kjv-bitnet-2m.gguf -p "And God said" -n 64 --seed 1
