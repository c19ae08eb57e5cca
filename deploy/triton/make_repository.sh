#!/usr/bin/env bash
# SPDX-License-Identifier: MPL-2.0
# Puts the bundled models' graphs into the Triton model repository beside this script
# (model_repository/NAME/1/model.onnx, next to the committed config.pbtxt files), or into
# the folder given, ready for `docker run ... tritonserver --model-repository=...`
# (deploy/triton/README.md).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
out=${1:-$here/model_repository}
for name in hama-en quartznet-en; do
  mkdir -p "$out/$name/1"
  [ "$out" = "$here/model_repository" ] || cp "$here/model_repository/$name/config.pbtxt" "$out/$name/"
  cp "$root/models/$name.onnx" "$out/$name/1/model.onnx"
done
echo "model repository: $out"
