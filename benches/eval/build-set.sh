#!/usr/bin/env bash
# Builds a code-search evaluation set of our own into OUT, the same way as the public one
# (../shared/eval/make_codesearch_set.py) from other real code: crates this workspace depends on
# (versions pinned by its Cargo.lock) and other packages of Python's standard library.
#   second: the set every change to retrieval is measured on beside the public one, so that
#           nothing is tuned to the public set alone;
#   third:  a held-out set from yet other code, for checking that what was chosen on the first two
#           holds elsewhere.
# Needs: cargo (the workspace's dependencies fetched), python3, the public set's script.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
workspace=$(cd "$here/../.." && pwd)
set_name=${1:?usage: build-set.sh second|third OUT}
out=${2:?usage: build-set.sh second|third OUT}
script=${AIEX_EVAL_DIR:-$workspace/../shared/eval}/make_codesearch_set.py
cargo fetch --quiet --manifest-path "$workspace/Cargo.toml"
stdlib=$(python3 -c 'import sysconfig; print(sysconfig.get_paths()["stdlib"])')
case $set_name in
  second)
    crates="url bytes indexmap memchr either ignore semver"
    packages="email http logging urllib multiprocessing"
    seed=11
    ;;
  third)
    crates="globset aho-corasick http itertools similar crossbeam-channel"
    packages="unittest wsgiref xmlrpc html collections tomllib zoneinfo sqlite3 dbm"
    seed=23
    ;;
  *)
    echo "unknown set $set_name: second or third" >&2
    exit 2
    ;;
esac
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
python_dirs=""
for package in $packages; do
  python_dirs="$python_dirs $stdlib/$package"
done
# shellcheck disable=SC2086
python3 "$script" "$out" --seed "$seed" --rust $dirs --python $python_dirs
echo "built $out: $(wc -l < "$out/queries.jsonl") queries"
