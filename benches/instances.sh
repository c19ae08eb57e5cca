#!/usr/bin/env bash
# SPDX-License-Identifier: MPL-2.0
# Many element instances in one process: runs N file pipelines at once in one gst-launch
# (N = 1, 2, 8 by default) and N = 1 N times one after another, and prints wall time,
# aggregate throughput (audio seconds per wall second) and peak RSS for each.
# Usage: bash benches/instances.sh [AUDIO.wav] [N...]   (release plugin: cargo build --release)
# PROPS="decoder=greedy threads=1" sets element properties; GST_PLUGIN_PATH picks the plugin.
set -euo pipefail
cd "$(dirname "$0")/.."
audio=${1:-samples/LJ001-0001.wav}
shift || true
counts=${*:-1 2 8}
export GST_PLUGIN_PATH=${GST_PLUGIN_PATH:-target/release}
seconds=$(python3 -c "import wave,sys; w=wave.open(sys.argv[1]); print(w.getnframes()/w.getframerate())" "$audio")
branch="filesrc location=$audio ! wavparse ! audioconvert ! audioresample ! quartznetstt ${PROPS:-} ! fakesink"
run() { # $1 = branches in one process; prints "wall_s rss_mb"
  local line="" i
  for ((i = 0; i < $1; i++)); do line+=" $branch"; done
  /usr/bin/time -f "%e %M" gst-launch-1.0 -q $line 2>&1 >/dev/null | tail -n 1 | awk '{printf "%s %.0f\n", $1, $2 / 1024}'
}
printf '%-28s %8s %12s %9s\n' "run" "wall s" "audio s/s" "RSS MB"
for n in $counts; do
  read -r wall rss < <(run "$n")
  printf '%-28s %8.2f %12.1f %9s\n' "$n at once" "$wall" "$(echo "$n * $seconds / $wall" | bc -l)" "$rss"
  if [ "$n" -gt 1 ]; then
    total=0
    for ((i = 0; i < n; i++)); do read -r wall rss < <(run 1); total=$(echo "$total + $wall" | bc -l); done
    printf '%-28s %8.2f %12.1f %9s\n' "$n one after another" "$total" "$(echo "$n * $seconds / $total" | bc -l)" "$rss"
  fi
done
