# Sourced by the results/cpu/*/run.sh scripts: the real-data recipe of results/cpu/real-recipe
# (the CUB subset, the `transfer` profile) and a `run` that keeps finished runs and resumes
# interrupted ones. Set R (the output folder) before sourcing; RUN_PREFIX (e.g. a `flock`)
# wraps every training command.
CUB=${CUB:-$(realpath ../shared/data/cub100-227px)}
FGVC=${FGVC:-.venv/bin/fgvc}
EPOCHS=${EPOCHS:-5}
# channels_last, as the recipe's baseline ran (a memory layout, ~1.6x faster for Lite0 on
# this CPU; the provenance records it).
export FGVC_CPU_CHANNELS_LAST=${FGVC_CPU_CHANNELS_LAST:-1}
COMMON="--dataset cub_list --data-root $CUB --profile transfer --workers 1 --device cpu --quiet"
# The settings the validation sweeps of results/cpu/real-recipe selected (its selected.txt:
# "selected on validation: --lr 0.1 --backbone-lr-mult 0.1 --bn-policy frozen"), if recorded:
SELECTED=${SELECTED:-$(sed -n 's/^selected on validation: //p' results/cpu/real-recipe/selected.txt 2>/dev/null || true)}
echo "selected on validation: ${SELECTED:-none recorded, transfer profile defaults}"
# A validation sweep's settings: one epoch on the whole training split (the schedule runs to
# zero within it), 300 test images that the selection never reads.
SWEEP="$COMMON --epochs 1 --max-test-samples 300"
# The point a `fgvc sweep` printout selected, as flags:
# "lr=0.1,backbone_lr_mult=0.1: best val ... <- selected" -> --lr 0.1 --backbone-lr-mult 0.1
selected() { grep "selected on validation" "$1" | cut -d: -f1 | tr ',' '\n' \
             | sed -E 's/^([a-z_]+)=(.*)$/--\1 \2/; s/_/-/g' | tr '\n' ' '; }
run() {  # a finished run is kept; an interrupted one resumes
  local out=$1; shift
  # The epochs of a finished run in the folder, empty if there is none (read as JSON, so
  # the trainer's formatting of results.json does not matter).
  local had
  had=$(${PYTHON:-.venv/bin/python} -c 'import json, sys
try:
    record = json.load(open(sys.argv[1]))
except (OSError, ValueError):
    sys.exit()
if record.get("status") == "finished":
    print(record["config"]["epochs"])' "$R/$out/results.json")
  if [ -n "$had" ]; then
    # A finished run is kept only if it answers the same question: a run of other epochs
    # in the folder would otherwise stand in silently for the one asked for.
    if [ "$had" != "$EPOCHS" ]; then
      echo "run: $R/$out holds a finished ${had}-epoch run, not $EPOCHS; pass another output folder as \$1" >&2
      exit 2
    fi
    return
  fi
  if [ -f "$R/$out/checkpoint.pt" ]; then set -- "$@" --resume; fi
  ${RUN_PREFIX:-} $FGVC train $COMMON "$@" --out "$R/$out"
}
