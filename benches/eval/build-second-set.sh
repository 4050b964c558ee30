#!/usr/bin/env bash
# Builds the second code-search evaluation set into OUT, the same way as the public one
# (../shared/eval/make_codesearch_set.py) from other real code: crates this workspace depends on
# (versions pinned by its Cargo.lock) and other packages of Python's standard library. Changes to
# retrieval are measured on both sets, so that nothing is tuned to the public set alone.
# Needs: cargo (the workspace's dependencies fetched), python3, the public set's script.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
workspace=$(cd "$here/../.." && pwd)
out=${1:?usage: build-second-set.sh OUT}
script=${AIEX_EVAL_DIR:-$workspace/../shared/eval}/make_codesearch_set.py
cargo fetch --quiet --manifest-path "$workspace/Cargo.toml"
crates="url bytes indexmap memchr either ignore semver"
dirs=$(cargo metadata --format-version 1 --manifest-path "$workspace/Cargo.toml" | python3 -c '
import json, os, sys
wanted = sys.argv[1].split()
meta = json.load(sys.stdin)
found = {}
for package in meta["packages"]:
    name = package["name"]
    if name in wanted and package.get("source", "").startswith("registry+"):
        # One version per crate: the highest the lock pins.
        version = tuple(int(p) for p in package["version"].split("-")[0].split("."))
        if name not in found or version > found[name][0]:
            found[name] = (version, os.path.dirname(package["manifest_path"]))
missing = [name for name in wanted if name not in found]
if missing:
    sys.exit("crates not in the workspace lock: " + " ".join(missing))
print(" ".join(found[name][1] for name in wanted))
' "$crates")
stdlib=$(python3 -c 'import sysconfig; print(sysconfig.get_paths()["stdlib"])')
# shellcheck disable=SC2086
python3 "$script" "$out" --seed 11 \
  --rust $dirs \
  --python "$stdlib"/email "$stdlib"/http "$stdlib"/logging "$stdlib"/urllib "$stdlib"/multiprocessing
echo "built $out: $(wc -l < "$out/queries.jsonl") queries"
