#!/bin/sh
# The emulated-cluster validation of docs/validation.md ("An emulated cluster"): as root, or as
# any user where the kernel allows unprivileged user namespaces.
# Calibrates one hierarchical profile per P (nodes = P/2, 2 processes per node, links shaped to
# RATE), then runs every grid of mini-alexnet (plan fc-model) under both mappings at P = 4, 8, 16,
# and the rate sweep at P = 8.  Writes docs/validation/emu-*.  About 15 minutes on 2 cores.
set -eu
OUT=${OUT:-docs/validation}
GRIDCOST=${GRIDCOST:-"python -m costmodel.cli"}
CAL="--max-size 16MiB --reps 5 --warmup 1"
VAL="--plan fc-model --iterations 3 --warmup 1"
for nodes in 2 4 8; do
  P=$((2 * nodes))
  $GRIDCOST calibrate run --emulate "nodes=$nodes, ppn=2, link=200 Mbit/s" $CAL \
    --name "emulated-P$P-200mbit" --profile "$OUT/emu-P$P.yaml" --raw "$OUT/emu-cal-P$P.json"
done
$GRIDCOST validate --emulate "nodes=8, ppn=2, link=200 Mbit/s" --P 4,8,16 $VAL \
  --machine 4="$OUT/emu-P4.yaml" --machine 8="$OUT/emu-P8.yaml" --machine 16="$OUT/emu-P16.yaml" \
  --raw "$OUT/emu-val-raw.json" --plot docs/validation-emulated.png
# the same measurements priced as gloo runs its collectives: flat rings over the ranks in order
# (docs/hierarchy.md), each level fitted again with the ring's latency count (no re-measuring)
for P in 4 8 16; do
  $GRIDCOST calibrate import "$OUT/emu-cal-P$P.json" --collectives ring \
    --name "emulated-P$P-200mbit-ring" --profile "$OUT/emu-P$P-ring.yaml"
done
$GRIDCOST validate --from-raw "$OUT/emu-val-raw.json" --plan fc-model --collectives flat-ring \
  --machine 4="$OUT/emu-P4-ring.yaml" --machine 8="$OUT/emu-P8-ring.yaml" \
  --machine 16="$OUT/emu-P16-ring.yaml"
for rate in 100 400 1600; do
  $GRIDCOST calibrate run --emulate "nodes=4, ppn=2, link=$rate Mbit/s" $CAL \
    --name "emulated-P8-${rate}mbit" --profile "$OUT/emu-P8-$rate.yaml" \
    --raw "$OUT/emu-cal-P8-$rate.json"
  $GRIDCOST validate --emulate "nodes=4, ppn=2, link=$rate Mbit/s" --P 8 $VAL \
    --machine "$OUT/emu-P8-$rate.yaml" --raw "$OUT/emu-val-P8-$rate.json"
done
