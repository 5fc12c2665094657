#!/usr/bin/env bash
# Checks one Spin model exhaustively (safety: assertions and invalid end
# states) and compares the verdict with what is expected.
#   tests/model/check.sh MODEL.pml pass|fail [-DNAME[=VALUE]...]
# pass: the search must complete (no depth truncation) with 0 errors.
# fail: the search must find an error (a buggy variant put back: the model
#       is shown to catch it); the violated assertion and trail are printed.
# Environment: SPIN (default spin), CC (default cc), WORK_DIR (default a
# temporary directory), PAN_DEPTH (default 200000).
set -euo pipefail

if [ $# -lt 2 ]; then
  sed -n '2,10p' "$0" | sed 's/^# \{0,1\}//' >&2
  exit 2
fi
model="$(cd "$(dirname "$1")" && pwd)/$(basename "$1")"
expect="$2"
shift 2
case "$expect" in pass | fail) ;; *) echo "check.sh: expect 'pass' or 'fail', not '$expect'" >&2; exit 2 ;; esac

spin="${SPIN:-spin}"
cc="${CC:-cc}"
depth="${PAN_DEPTH:-200000}"
if ! command -v "$spin" >/dev/null 2>&1; then
  echo "check.sh: '$spin' not found: install Debian package 'spin' (scripts/test installs it)" >&2
  exit 1
fi

work="${WORK_DIR:-}"
if [ -z "$work" ]; then
  work="$(mktemp -d)"
  trap 'rm -rf "$work"' EXIT
fi
mkdir -p "$work"
cd "$work"
rm -f pan pan.* ./*.trail
# A local copy: spin -t looks for the trail beside the model it is given.
cp "$model" .
model="$(basename "$model")"

label="$model${*:+ $*}"
"$spin" -a "$@" "$model" >spin.out 2>&1 || { cat spin.out >&2; echo "check.sh: spin -a failed on $label" >&2; exit 1; }
# -DSAFETY: safety properties only; -DNOREDUCE is not used: partial-order
# reduction preserves safety properties.
# -O0 for the buggy variants: they stop at the first error, so compiling
# pan.c for speed would cost more than it saves.
opt=-O2
[ "$expect" = fail ] && opt=-O0
"$cc" "$opt" -DSAFETY -DMEMLIM=2048 -w -o pan pan.c 2>cc.out || { cat cc.out >&2; exit 1; }
set +e
./pan -m"$depth" -n >pan.out 2>&1
set -e

errors="$(sed -n 's/.*errors: \([0-9][0-9]*\).*/\1/p' pan.out | tail -n1)"
states="$(sed -n 's/^ *\([0-9.e+]*\) states, stored.*/\1/p' pan.out | head -n1)"
reached="$(sed -n 's/.*depth reached \([0-9]*\).*/\1/p' pan.out | head -n1)"
truncated=0
grep -q "max search depth too small" pan.out && truncated=1
grep -qE "out of memory|MEMLIM bound" pan.out && truncated=1
echo "$label: states=${states:-?} depth=${reached:-?} errors=${errors:-?} truncated=$truncated expected=$expect"

if [ -z "$errors" ]; then
  cat pan.out >&2
  echo "check.sh: could not read the verdict of pan" >&2
  exit 1
fi

if [ "$expect" = pass ]; then
  if [ "$errors" != 0 ] || [ "$truncated" != 0 ]; then
    cat pan.out
    if ls ./*.trail >/dev/null 2>&1; then
      echo "---- counterexample (spin -t -p) ----"
      "$spin" -t -p -g -l "$@" "$model" | tail -n 80
    fi
    echo "FAILED: $label should hold, and does not (or the search was truncated)"
    exit 1
  fi
  echo "OK: $label holds (exhaustive)"
else
  if [ "$errors" = 0 ]; then
    cat pan.out
    echo "FAILED: $label is a buggy variant; the model must find its defect, and found none"
    exit 1
  fi
  grep -m1 -E "assertion violated|invalid end state|pan:[0-9]+:" pan.out || true
  echo "OK: $label: the model finds the defect put back"
fi
