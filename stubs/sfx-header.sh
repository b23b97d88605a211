#!/bin/sh
# envpack @@ENVPACK_VERSION@@: self-extracting installer. The bytes after this script are a tar:
EP_SKIP=@@SKIP@@
# (the number of bytes of this script; the archive starts right after them).
#
#   sh THIS-FILE [--extract FOLDER] [PREFIX] [--yes] [--force] [--help]
#
# Unpacks the bundle with tar (into a temporary folder that is removed afterwards, or into
# FOLDER with --extract, where it stays), then runs its setup.sh with the other arguments; the
# exit code is setup.sh's (see --help), or 20 when there is no tar, 21 when the extraction
# fails. Needs nothing beyond POSIX sh, tar and the coreutils (tail, mktemp).

EP_TOP=@@NAME@@
EP_SELF=$0
EP_DEST=
EP_KEEP=
EP_N=$#
# The arguments for setup.sh: every one but "--extract FOLDER", in order.
while [ "$EP_N" -gt 0 ]; do
    EP_ARG=$1
    shift
    EP_N=$((EP_N - 1))
    case $EP_ARG in
        --extract)
            if [ "$EP_N" -eq 0 ] || [ -z "$1" ]; then
                echo "setup: --extract needs a folder after it" >&2
                exit 1
            fi
            EP_DEST=$1
            EP_KEEP=1
            shift
            EP_N=$((EP_N - 1))
            ;;
        --extract=*)
            EP_DEST=${EP_ARG#--extract=}
            EP_KEEP=1
            ;;
        *) set -- "$@" "$EP_ARG" ;;
    esac
done

if ! command -v tar >/dev/null 2>&1 || ! command -v tail >/dev/null 2>&1; then
    echo "setup: this file unpacks itself with tar and tail, and this system has no tar (or tail)." >&2
    echo "setup: install tar, or unpack it elsewhere: tail -c +$((EP_SKIP + 1)) THIS-FILE > bundle.tar" >&2
    exit 20
fi
if [ -z "$EP_DEST" ]; then
    EP_DEST=$(mktemp -d "${TMPDIR:-/tmp}/envpack-XXXXXX" 2>/dev/null)
    if [ -z "$EP_DEST" ]; then
        echo "setup: cannot create a temporary folder; use --extract FOLDER." >&2
        exit 21
    fi
fi
if ! mkdir -p "$EP_DEST" 2>/dev/null; then
    echo "setup: cannot create \"$EP_DEST\"." >&2
    exit 21
fi
cleanup() {
    if [ -z "$EP_KEEP" ]; then rm -rf "${EP_DEST:?}/$EP_TOP" && rmdir "$EP_DEST" 2>/dev/null; fi
}
echo "setup: extracting \"$EP_SELF\" into \"$EP_DEST\""
if ! tail -c +$((EP_SKIP + 1)) "$EP_SELF" | (cd "$EP_DEST" && tar -xf -) ||
    [ ! -f "$EP_DEST/$EP_TOP/setup.sh" ]; then
    echo "setup: the extraction failed (a truncated download, or no space in \"$EP_DEST\"?)." >&2
    cleanup
    exit 21
fi
# A relative default prefix is in the folder of this file, not in the temporary one.
case $EP_SELF in
    */*) ENVPACK_SFX_DIR=$(cd -- "${EP_SELF%/*}" 2>/dev/null && pwd) ;;
    *) ENVPACK_SFX_DIR=$(pwd) ;;
esac
export ENVPACK_SFX_DIR
trap 'cleanup; exit 130' INT
trap 'cleanup; exit 143' TERM
trap 'cleanup; exit 129' HUP
sh "$EP_DEST/$EP_TOP/setup.sh" "$@"
EP_RC=$?
cleanup
exit "$EP_RC"
