#!/bin/sh
# Removes the conda environment @@NAME@@: the folder of this file, and nothing else (setup.sh
# wrote nothing outside it). Written into the prefix by envpack's setup.sh.
#
#   sh PREFIX/uninstall.sh [--yes]      --yes: do not ask (nothing is asked without a terminal)
#
# Exit codes (uninstall.bat's): 0 removed; 1 bad command line; 2 cancelled; 3 the environment
# is active in this shell; 9 not an envpack environment, or some files could not be removed.

EP_YES=
for EP_ARG in "$@"; do
    case $EP_ARG in
        --yes | -y) EP_YES=1 ;;
        *)
            echo "usage: sh uninstall.sh [--yes]" >&2
            exit 1
            ;;
    esac
done
case $0 in
    */*) EP_PREFIX=$(cd -- "${0%/*}" 2>/dev/null && pwd) ;;
    *) EP_PREFIX=$(pwd) ;;
esac
# Only a folder that setup.sh installed: it holds conda-meta and the install path it wrote.
if [ -z "$EP_PREFIX" ] || [ "$EP_PREFIX" = / ] || [ ! -d "$EP_PREFIX/conda-meta" ] ||
    [ ! -f "$EP_PREFIX/etc/envpack/install-path.txt" ]; then
    echo "uninstall: \"${EP_PREFIX:-?}\" holds no environment installed by envpack; nothing was removed." >&2
    exit 9
fi
if [ -n "${CONDA_PREFIX:-}" ] && [ "$CONDA_PREFIX" = "$EP_PREFIX" ]; then
    echo "uninstall: @@NAME_TEXT@@ is active in this shell; run uninstall.sh from a new shell." >&2
    exit 3
fi
if [ -z "$EP_YES" ] && [ -t 0 ]; then
    printf 'Remove the environment @@NAME_TEXT@@ in "%s"? [y/N] ' "$EP_PREFIX"
    EP_ANSWER=
    read -r EP_ANSWER || EP_ANSWER=
    case $EP_ANSWER in
        y | Y | yes | YES | Yes) ;;
        *)
            echo "uninstall: cancelled; nothing was removed."
            exit 2
            ;;
    esac
fi
# Out of the folder first: some systems refuse to remove the current directory.
cd / || exit 9
rm -rf -- "$EP_PREFIX" "$EP_PREFIX.envpack-work" 2>/dev/null
if [ -e "$EP_PREFIX" ]; then
    echo "uninstall: some files in \"$EP_PREFIX\" could not be removed (no permission?)." >&2
    exit 9
fi
echo "uninstall: removed \"$EP_PREFIX\"."
exit 0
