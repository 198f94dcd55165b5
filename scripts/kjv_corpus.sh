#!/usr/bin/env bash
# Writes the King James Bible (Debian's bible-kjv, `bible -f`) as a training corpus: one verse per line with the
# "Ge1:1 " reference removed. Validation is a fixed set of whole books (held out, never trained on): Ruth,
# Esther, Jonah, Mark and 2 Peter (about 3% of the verses); the other 61 books are the training text.
# Usage: scripts/kjv_corpus.sh [OUT_DIR]   (default build/kjv) -> OUT_DIR/train.txt, OUT_DIR/validation.txt
set -euo pipefail
out=${1:-build/kjv}
command -v bible >/dev/null || { echo "kjv_corpus: 'bible' not found; apt-get install -y bible-kjv" >&2; exit 1; }
mkdir -p "$out"
all=$(mktemp)
trap 'rm -f "$all"' EXIT
bible -f "Gen1:1-Rev22:21" > "$all"
# Book abbreviation as `bible` prints it (the text before the chapter number).
held='^(Ruth|Est|Jonah|Mark|2Pet)[0-9]+:[0-9]+ '
grep -E "$held" "$all" | sed -E 's/^[0-9]?[A-Za-z]+[0-9]+:[0-9]+ //' > "$out/validation.txt"
grep -vE "$held" "$all" | sed -E 's/^[0-9]?[A-Za-z]+[0-9]+:[0-9]+ //' > "$out/train.txt"
echo "kjv_corpus: $(wc -l < "$out/train.txt") train verses ($(wc -c < "$out/train.txt") bytes), $(wc -l < "$out/validation.txt") validation verses ($(wc -c < "$out/validation.txt") bytes) in $out"
