#!/usr/bin/env bash
# `make test`'s pytest: the long QEMU scenarios and the rest of the suite side by side.
#
# A guest under TCG keeps one core busy and waits on nothing else; the rest of the suite
# is mostly one Python process too. One after the other they took 44 minutes on CI's two
# cores, over its 40; side by side each has a core. QEMU_STREAM is the first run's files
# (their lines prefixed [qemu], its summary last); every other test, the short QEMU
# scenarios included, is the second run's. Balanced by the times of a full run: the
# QEMU stream 35 min and the rest 31 min, on a machine busy with other work besides.
#
# Usage: ci/pytest-split.sh PYTHON [pytest args...]. With pytest args (a path, -k, -m)
# it is one plain pytest run: a selection is the caller's. Exit: the first non-zero of
# the two runs; 5 (nothing collected) is a failure like any other.
set -uo pipefail
py=$1
shift
if [ "$#" -gt 0 ]; then
    "$py" -m pytest "$@"
    exit $?
fi

scratch=$(mktemp -d "${TMPDIR:-/tmp}/pyupdate-pytest.XXXXXX")
# A failed test's tmp dir stays (tmp_path_retention_policy): kept for a look when a run
# fails, removed when both pass.
cleanup() {
    [ -n "${qemu_pid:-}" ] && kill -- -"$qemu_pid" 2>/dev/null
    if [ "${rest:-1}" -eq 0 ] && [ "${qemu:-1}" -eq 0 ]; then
        rm -rf "$scratch"
    else
        echo "pytest temp dirs kept in $scratch" >&2
    fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# Each run its own temp root: pytest prunes old numbered roots of a shared one.
# The QEMU run writes no cache: two runs would race on .pytest_cache.
QEMU_STREAM=(
    tests/qemu/test_qemu_test_tool.py
    tests/qemu/test_power_cut.py
    tests/qemu/test_standalone_update.py
    tests/qemu/test_yocto_layer.py
    tests/qemu/test_buildroot_post_image.py
)
deselect=()
for file in "${QEMU_STREAM[@]}"; do
    [ -f "$file" ] || { echo "error: $0: $file is gone: update QEMU_STREAM" >&2; exit 2; }
    deselect+=(--deselect "$file")
done

set -m  # the QEMU run in its own process group: an interrupt stops its guests too
(
    # unbuffered: into a pipe Python would hold its lines back in 8 KiB blocks
    PYTHONUNBUFFERED=1 "$py" -m pytest -p no:cacheprovider --basetemp "$scratch/qemu" \
        --durations 10 "${QEMU_STREAM[@]}" 2>&1 | sed -u 's/^/[qemu] /'
    exit "${PIPESTATUS[0]}"
) &
qemu_pid=$!
set +m

"$py" -m pytest --basetemp "$scratch/rest" --durations 25 "${deselect[@]}"
rest=$?
wait "$qemu_pid"
qemu=$?
qemu_pid=

for run in "rest:$rest" "qemu:$qemu"; do
    name=${run%%:*} rc=${run#*:}
    if [ "$rc" -eq 5 ]; then
        echo "error: pytest ($name) collected no tests" >&2
    elif [ "$rc" -ne 0 ]; then
        echo "error: pytest ($name) exited $rc" >&2
    fi
done
[ "$rest" -ne 0 ] && exit "$rest"
exit "$qemu"
