#!/bin/sh
# pip-step.sh PREFIX BUNDLE LOG: the bundle's PyPI wheels, installed after micromamba by the
# environment's own pip, offline and hash-checked, nothing of the machine's pip set-up let in.
# setup.sh runs it as: sh "$bundle/pip-step.sh" "$prefix" "$bundle" "$log" || exit 14
# Exit codes: 0 done (or no wheels.txt), 14 pip failed or the environment has no python.
prefix=$1
bundle=${2%/}
log=$3
[ -f "$bundle/wheels.txt" ] || exit 0
if [ ! -x "$prefix/bin/python" ]; then
    echo "pip: no bin/python in $prefix" >>"$log"
    echo "ERROR: the environment has no bin/python, so its wheels cannot be installed" >&2
    exit 14
fi
# Every PIP_* variable would reach pip (an index URL, --user, a proxy, a cache dir).
for name in $(env | sed -n 's/^\(PIP_[A-Za-z0-9_]*\)=.*/\1/p'); do
    unset "$name"
done
unset PYTHONPATH PYTHONHOME PYTHONSTARTUP PYTHONUSERBASE
PIP_CONFIG_FILE=/dev/null
PYTHONNOUSERSITE=1
export PIP_CONFIG_FILE PYTHONNOUSERSITE
echo "pip: installing the bundle's wheels into $prefix" >>"$log"
if "$prefix/bin/python" -s -m pip install --no-index --no-deps --require-hashes --no-cache-dir \
    --isolated --disable-pip-version-check --no-warn-script-location \
    --find-links "$bundle/wheels" -r "$bundle/wheels.txt" >>"$log" 2>&1; then
    echo "pip: done" >>"$log"
    exit 0
fi
echo "pip: installing the wheels failed; see above in this log" >>"$log"
echo "ERROR: installing the Python wheels failed; see $log" >&2
exit 14
