#!/bin/sh
# envpack @@ENVPACK_VERSION@@: the offline installer of a conda environment (Linux and macOS).
#
#   sh setup.sh [PREFIX] [--yes] [--force] [--help]
#
# Installs the conda environment of this folder into PREFIX with no network and no administrator
# rights. It writes nothing outside PREFIX: not HOME, no shell rc file, no "shell init". Its work
# folder "PREFIX.envpack-work" (beside PREFIX, for the package copies and the log) is removed at
# the end.
#   PREFIX    the folder to install into (default: see --help); it must be absent or empty
#   --yes     do not ask for confirmation (nothing is asked when stdin is not a terminal)
#   --force   replace PREFIX when it already holds a conda environment
#
# Exit codes (the numbers of setup.bat where the meaning is the same; also listed by --help):
#    0  installed
#    1  bad command line
#    2  cancelled at the confirmation prompt
#    3  a conda environment is active in this shell (CONDA_PREFIX is set)
#    4  this machine cannot run the environment (another operating system or processor)
#    5  the bundle is incomplete: a file is missing or has the wrong size
#    6  PREFIX cannot be used: not empty, a file, "/", or it contains ":" or a control character
#    7  not enough free disk space
#    9  could not prepare the install (delete the old prefix, create or fill the work folder)
#   10  micromamba failed (for example a damaged package); its messages are shown and logged
#   11  micromamba exited 0 but packages are missing from the environment
#   12  could not write activate.sh, uninstall.sh, .condarc or bin/micromamba into the prefix
#   13  a post-install script failed@@PIP_EXIT_COMMENT@@
#
# POSIX sh only (dash, bash, busybox ash; shellcheck clean): no arrays, no "local", no
# "[[", no "$'...'". Lists from the bundle are newline-separated strings read with IFS set to a
# newline and globbing off (no bundle name holds a newline or control character: envpack
# refuses them). Every path is quoted.

EP_NAME=@@NAME@@
EP_PLATFORM=@@PLATFORM@@
EP_PACKAGE_COUNT=@@PACKAGE_COUNT@@
# shellcheck disable=SC2016 # a literal "$HOME" here is expanded below, never by eval
EP_DEFAULT_PREFIX=@@DEFAULT_PREFIX@@
EP_NEED_KB=@@NEED_KB@@
EP_MICROMAMBA=@@MICROMAMBA@@
EP_EXPLICIT=@@EXPLICIT_FILE@@
# "size path" of every bundle file, relative to this folder.
EP_FILES=@@FILES@@
# The packages (bundle-relative) and the conda-meta record each leaves in the prefix.
EP_PACKAGES=@@PACKAGES@@
EP_META=@@META@@
# The recipe's post-install scripts, in run order (bundle-relative).
EP_POST_INSTALL=@@POST_INSTALL@@

EP_NL='
'
EP_RC=1
EP_LOG=
EP_WORK=
EP_PREFIX=

say() { printf 'setup: %s\n' "$*"; }
err() { printf 'setup: %s\n' "$*" >&2; }
log() { if [ -n "$EP_LOG" ]; then printf '%s\n' "$*" >>"$EP_LOG"; fi; }

usage() {
    cat <<EOF
Installs the conda environment "$EP_NAME" ($EP_PLATFORM, $EP_PACKAGE_COUNT packages) offline,
without administrator rights, and without changing HOME, shell rc files or PATH.

  sh setup.sh [PREFIX] [--yes] [--force]

  PREFIX    the folder to install into; it must be absent or empty.
            Default: "$EP_DEFAULT_PREFIX"
  --yes     do not ask for confirmation (nothing is asked when stdin is not a terminal)
  --force   replace PREFIX when it already holds a conda environment

Afterwards ". PREFIX/activate.sh" activates the environment in the current shell (with no
other environment active), and "sh PREFIX/uninstall.sh" removes it.

Exit codes: 0 installed; 1 bad command line; 2 cancelled; 3 a conda environment is active;
4 this machine cannot run it; 5 bundle incomplete; 6 PREFIX not usable; 7 not enough disk
space; 9 work folder failed; 10 micromamba failed; 11 packages missing after install; 12 could
not write the activation files; 13 a post-install script failed;@@PIP_EXIT_USAGE@@ 20 no tar and 21 extraction
failed (self-extracting file only).
EOF
}

# Every run ends here: the log goes into the prefix when there is one, the work folder's
# package copies are removed, and the exit code is the one of the step that decided it.
finish() {
    EP_RC=$1
    if [ -n "$EP_LOG" ] && [ -f "$EP_LOG" ]; then
        if [ "$EP_RC" -ne 0 ]; then log "result: FAILED, exit code $EP_RC"; fi
        log "finished: $(date 2>/dev/null)"
        if [ -d "$EP_PREFIX" ]; then cp "$EP_LOG" "$EP_PREFIX/envpack-install.log" 2>/dev/null; fi
    fi
    if [ -n "$EP_WORK" ] && [ -d "$EP_WORK" ]; then
        rm -rf "${EP_WORK:?}/pkgs" "${EP_WORK:?}/root" "${EP_WORK:?}/bin" "${EP_WORK:?}/home" \
            "${EP_WORK:?}/tmp" "${EP_WORK:?}/step.log" 2>/dev/null
        if [ -f "$EP_PREFIX/envpack-install.log" ]; then rm -rf "$EP_WORK" 2>/dev/null; fi
    fi
    if [ "$EP_RC" -ne 0 ] && [ -n "$EP_PREFIX" ]; then
        if [ -f "$EP_PREFIX/envpack-install.log" ]; then
            err "log: \"$EP_PREFIX/envpack-install.log\""
        elif [ -n "$EP_WORK" ] && [ -f "$EP_WORK/envpack-install.log" ]; then
            err "log: \"$EP_WORK/envpack-install.log\""
        fi
        if [ -f "$EP_PREFIX/.envpack-incomplete" ]; then
            err "the unfinished environment in \"$EP_PREFIX\" is replaced when you run setup.sh again."
        fi
    fi
    exit "$EP_RC"
}

# ------------------------------------------------------------------ arguments
EP_YES=
EP_FORCE=
EP_PREFIX_ARG=
EP_ONLY_PREFIX=
for EP_ARG in "$@"; do
    if [ -z "$EP_ONLY_PREFIX" ]; then
        case $EP_ARG in
            --yes | -y) EP_YES=1; continue ;;
            --force) EP_FORCE=1; continue ;;
            --help | -h) usage; exit 0 ;;
            --) EP_ONLY_PREFIX=1; continue ;;
            -*)
                err "unexpected argument: \"$EP_ARG\""
                err "run \"sh setup.sh --help\" to see the usage."
                exit 1
                ;;
        esac
    fi
    if [ -n "$EP_PREFIX_ARG" ]; then
        err "unexpected argument: \"$EP_ARG\" (the folder is already \"$EP_PREFIX_ARG\")"
        exit 1
    fi
    if [ -z "$EP_ARG" ]; then
        err "the install folder given is an empty string"
        exit 1
    fi
    EP_PREFIX_ARG=$EP_ARG
done

# ------------------------------------------------------------------ checks that change nothing
# The user's rule: environments are created (and activated) from a clean shell only.
if [ -n "${CONDA_PREFIX:-}" ]; then
    err "a conda environment is active in this shell: \"$CONDA_PREFIX\""
    err "run \"conda deactivate\" (or open a new shell with none active) and run setup.sh there."
    exit 3
fi

EP_OS=$(uname -s 2>/dev/null)
EP_CPU=$(uname -m 2>/dev/null)
EP_ARCH_OK=
case $EP_PLATFORM/$EP_OS/$EP_CPU in
    linux-64/Linux/x86_64 | linux-64/Linux/amd64) EP_ARCH_OK=1 ;;
    linux-aarch64/Linux/aarch64 | linux-aarch64/Linux/arm64) EP_ARCH_OK=1 ;;
    # Apple silicon runs x86_64 programs through Rosetta 2.
    osx-64/Darwin/x86_64 | osx-64/Darwin/arm64) EP_ARCH_OK=1 ;;
    osx-arm64/Darwin/arm64) EP_ARCH_OK=1 ;;
esac
if [ -z "$EP_ARCH_OK" ]; then
    err "this environment is built for $EP_PLATFORM; this machine is $EP_OS on $EP_CPU."
    exit 4
fi

# The bundle is the folder of this script (run as "sh setup.sh" or "./setup.sh" from anywhere).
case $0 in
    */*) EP_BUNDLE=$(cd -- "${0%/*}" 2>/dev/null && pwd) ;;
    *) EP_BUNDLE=$(pwd) ;;
esac
if [ -z "$EP_BUNDLE" ] || [ ! -f "$EP_BUNDLE/$EP_EXPLICIT" ]; then
    err "cannot find the bundle beside setup.sh (no \"$EP_EXPLICIT\" in \"${EP_BUNDLE:-?}\")."
    err "run setup.sh from the unpacked bundle folder, with every file of it."
    exit 5
fi

say "checking the bundle in \"$EP_BUNDLE\""
EP_BAD=0
set -f
IFS=$EP_NL
for EP_LINE in $EP_FILES; do
    EP_SIZE=${EP_LINE%% *}
    EP_FILE=${EP_LINE#* }
    if [ ! -f "$EP_BUNDLE/$EP_FILE" ]; then
        err "  missing: \"$EP_FILE\""
        EP_BAD=$((EP_BAD + 1))
    elif [ "$(wc -c <"$EP_BUNDLE/$EP_FILE" | tr -d ' ')" != "$EP_SIZE" ]; then
        err "  wrong size: \"$EP_FILE\""
        EP_BAD=$((EP_BAD + 1))
    fi
done
unset IFS
set +f
if [ "$EP_BAD" -ne 0 ]; then
    err "the bundle is incomplete ($EP_BAD files missing or damaged). Copy the whole bundle again."
    exit 5
fi

# The default may start with $HOME (or ~), expanded here (never by eval); a relative one is in
# the bundle's folder (for the self-extracting file: the folder that holds it).
EP_PREFIX=$EP_DEFAULT_PREFIX
# shellcheck disable=SC2016,SC2088 # the patterns are the literal text "$HOME" and "~"
case $EP_PREFIX in
    '~' | '$HOME' | '${HOME}') EP_PREFIX=${HOME:-} ;;
    '~/'*) EP_PREFIX=${HOME:-}/${EP_PREFIX#'~/'} ;;
    '$HOME/'*) EP_PREFIX=${HOME:-}/${EP_PREFIX#'$HOME/'} ;;
    '${HOME}/'*) EP_PREFIX=${HOME:-}/${EP_PREFIX#'${HOME}/'} ;;
    /*) ;;
    *) EP_PREFIX=${ENVPACK_SFX_DIR:-$EP_BUNDLE}/$EP_PREFIX ;;
esac
if [ -n "$EP_PREFIX_ARG" ]; then
    EP_PREFIX=$EP_PREFIX_ARG
    case $EP_PREFIX in
        /*) ;;
        *) EP_PREFIX=$(pwd)/$EP_PREFIX ;;
    esac
fi
while :; do
    case $EP_PREFIX in
        */) EP_PREFIX=${EP_PREFIX%/} ;;
        *) break ;;
    esac
done
case $EP_PREFIX in
    '' | /)
        err "\"/\" cannot be the install folder; name a folder, e.g. \"\$HOME/envs/$EP_NAME\"."
        exit 6
        ;;
    *:*)
        err "\"$EP_PREFIX\" contains \":\", which separates PATH entries: its bin folder could"
        err "never be put on PATH. Choose a folder whose path has none."
        exit 6
        ;;
esac
case $EP_PREFIX in
    *[[:cntrl:]]*)
        err "the install folder contains a control character (a newline?); choose another one."
        exit 6
        ;;
esac
EP_WORK=$EP_PREFIX.envpack-work

# An absent or empty prefix is used as is; one left by an unfinished envpack install (it has
# the marker) is replaced; a conda environment is replaced with --force; anything else stays.
EP_REPLACE=
if [ -e "$EP_PREFIX" ] || [ -L "$EP_PREFIX" ]; then
    if [ ! -d "$EP_PREFIX" ]; then
        err "\"$EP_PREFIX\" is a file, not a folder."
        exit 6
    fi
    if [ -n "$(ls -A "$EP_PREFIX" 2>/dev/null)" ]; then
        if [ -f "$EP_PREFIX/.envpack-incomplete" ]; then
            EP_REPLACE="an unfinished install"
        elif [ -f "$EP_WORK/.envpack-incomplete" ] && [ -d "$EP_PREFIX/conda-meta" ]; then
            # Stopped while micromamba ran: micromamba replaces the prefix it is given, so the
            # marker of that run is the work folder's.
            EP_REPLACE="an unfinished install"
        elif [ -z "$EP_FORCE" ]; then
            err "\"$EP_PREFIX\" already exists and is not empty."
            err "choose another folder, or add --force to replace the conda environment in it."
            exit 6
        elif [ -d "$EP_PREFIX/conda-meta" ]; then
            EP_REPLACE="the environment"
        else
            err "\"$EP_PREFIX\" is not empty and is not a conda environment: not replacing it."
            exit 6
        fi
    fi
fi

# Free space where the prefix will be (its nearest existing folder), from POSIX "df -Pk":
# the fourth field of the second line, in KiB. Unreadable: a warning, not a failure.
EP_PARENT=$EP_PREFIX
while [ ! -d "$EP_PARENT" ]; do
    EP_PARENT=$(dirname -- "$EP_PARENT")
done
EP_FREE=$(df -Pk "$EP_PARENT" 2>/dev/null |
    sed -n '2s/^[^ ]*  *[0-9][0-9]*  *[0-9][0-9]*  *\([0-9][0-9]*\)  *[0-9]*%.*$/\1/p')
if [ -z "$EP_FREE" ]; then
    say "warning: could not read the free space in \"$EP_PARENT\"; continuing without that check."
elif [ "$EP_FREE" -lt "$EP_NEED_KB" ]; then
    err "not enough free space in \"$EP_PARENT\": $((EP_FREE / 1024)) MiB free, about $(((EP_NEED_KB + 1023) / 1024)) MiB needed."
    exit 7
fi

echo
echo "  Environment   $EP_NAME ($EP_PLATFORM, $EP_PACKAGE_COUNT packages)"
echo "  Install into  \"$EP_PREFIX\""
echo "  Disk space    about $(((EP_NEED_KB + 1023) / 1024)) MiB"
if [ -n "$EP_REPLACE" ]; then echo "  Replaces      $EP_REPLACE already in that folder (deleted first)"; fi
echo
if [ -z "$EP_YES" ] && [ -t 0 ]; then
    printf 'Install now? [y/N] '
    EP_ANSWER=
    read -r EP_ANSWER || EP_ANSWER=
    case $EP_ANSWER in
        y | Y | yes | YES | Yes) ;;
        *)
            say "cancelled; nothing was changed."
            exit 2
            ;;
    esac
fi

# ------------------------------------------------------------------ the install
if [ -n "$EP_REPLACE" ]; then
    say "deleting $EP_REPLACE in \"$EP_PREFIX\""
    rm -rf -- "$EP_PREFIX" 2>/dev/null
    if [ -e "$EP_PREFIX" ]; then
        err "could not delete \"$EP_PREFIX\" completely (no permission?); fix that and run setup.sh again."
        finish 9
    fi
fi

# A fresh work folder each run: a package extracted by an earlier run would hide a damaged
# archive from micromamba's check. Beside the prefix, so that it is on the same file system.
rm -rf -- "$EP_WORK" 2>/dev/null
if [ -e "$EP_WORK" ] || ! mkdir -p "$EP_WORK/pkgs" "$EP_WORK/root" "$EP_WORK/bin" \
    "$EP_WORK/home" "$EP_WORK/tmp" 2>/dev/null; then
    err "could not create the work folder \"$EP_WORK\" (no permission to write beside the prefix?)."
    finish 9
fi
EP_LOG=$EP_WORK/envpack-install.log
if ! printf '%s\n' "envpack @@ENVPACK_VERSION@@ setup.sh: \"$EP_NAME\" ($EP_PLATFORM, $EP_PACKAGE_COUNT packages)" >"$EP_LOG"; then
    EP_LOG=
    err "could not write in the work folder \"$EP_WORK\"."
    finish 9
fi
log "started: $(date 2>/dev/null)"
log "bundle: \"$EP_BUNDLE\""
log "prefix: \"$EP_PREFIX\""
log "work folder: \"$EP_WORK\""
# The marker, before micromamba starts: until the install is complete, an interrupted run
# (Ctrl-C, a closed terminal, a power cut) is recognised by it and replaced by the next run.
if ! : >"$EP_WORK/.envpack-incomplete"; then
    err "could not write in the work folder \"$EP_WORK\"."
    finish 9
fi

say "copying $EP_PACKAGE_COUNT packages into the work folder"
EP_COPYFAIL=
set -f
IFS=$EP_NL
for EP_FILE in $EP_PACKAGES; do
    if ! cp "$EP_BUNDLE/$EP_FILE" "$EP_WORK/pkgs/" 2>/dev/null; then EP_COPYFAIL=$EP_FILE; fi
done
unset IFS
set +f
if ! cp "$EP_BUNDLE/$EP_MICROMAMBA" "$EP_WORK/bin/micromamba" 2>/dev/null ||
    ! chmod 755 "$EP_WORK/bin/micromamba" 2>/dev/null; then
    EP_COPYFAIL=$EP_MICROMAMBA
fi
if [ -n "$EP_COPYFAIL" ]; then
    err "could not copy \"$EP_COPYFAIL\" into \"$EP_WORK\" (disk full, or no permission?)."
    log "could not copy \"$EP_COPYFAIL\" into the work folder"
    finish 9
fi

# Progress while micromamba runs: its output goes to step.log and it says nothing before it ends,
# minutes on a big environment. This loop, in the background, prints a line every few seconds:
# the seconds since micromamba started, the packages unpacked into the work folder's package
# cache (a folder holding info/, at most 12 levels down: micromamba 2.6 and later extract to
# pkgs/<scheme>/<host>/<channel path>/<subdir>/<package>, older ones to pkgs/<package>; the walk
# never enters a package) and the records in conda-meta; when the counts have changed (at most
# one line per 5 s), otherwise every 30 s. micromamba stays in the foreground: Ctrl-C stops it as
# before. The loop ends when mm.done appears (written once micromamba returns; the script waits
# for the loop before it goes on) or when this script is gone: sh runs a background job of a
# script with SIGINT ignored, so after Ctrl-C it ends at its next check, printing nothing more.
ep_hb_walk() {
    if [ -d "$1/info" ]; then
        EP_HB_U=$((EP_HB_U + 1))
        return 0
    fi
    if [ "$2" -ge 12 ]; then return 0; fi
    # the list is expanded before the loop starts: the recursive call may reuse EP_HB_D
    for EP_HB_D in "$1"/*/; do
        if [ -d "$EP_HB_D" ]; then ep_hb_walk "${EP_HB_D%/}" $(($2 + 1)); fi
    done
}
ep_hb_now() {
    EP_HB_NOW=$(date +%s 2>/dev/null)
    case $EP_HB_NOW in '' | *[!0-9]*) EP_HB_NOW= ;; esac
}
EP_HB_PARENT=$$
ep_heartbeat() {
    set +f
    EP_HB_TICK=0
    EP_HB_SHOWN=0
    EP_HB_SEEN='0 0'
    ep_hb_now
    EP_HB_T0=$EP_HB_NOW
    while :; do
        # no terminal or pipe of the caller held by a sleep left behind when this loop ends
        sleep 2 >/dev/null 2>&1
        EP_HB_TICK=$((EP_HB_TICK + 1))
        if [ -e "$EP_WORK/mm.done" ] || ! kill -0 "$EP_HB_PARENT" 2>/dev/null; then return 0; fi
        EP_HB_U=0
        if [ -d "$EP_WORK/pkgs" ]; then ep_hb_walk "$EP_WORK/pkgs" 1; fi
        EP_HB_L=0
        for EP_HB_F in "$EP_PREFIX"/conda-meta/*.json; do
            if [ -f "$EP_HB_F" ]; then EP_HB_L=$((EP_HB_L + 1)); fi
        done
        ep_hb_now
        if [ -n "$EP_HB_NOW" ] && [ -n "$EP_HB_T0" ]; then
            EP_HB_S=$((EP_HB_NOW - EP_HB_T0))
        else
            EP_HB_S=$((EP_HB_TICK * 2))
        fi
        EP_HB_AGE=$((EP_HB_S - EP_HB_SHOWN))
        if [ "$EP_HB_U $EP_HB_L" = "$EP_HB_SEEN" ]; then
            if [ "$EP_HB_AGE" -lt 30 ]; then continue; fi
        elif [ "$EP_HB_AGE" -lt 5 ]; then
            continue
        fi
        EP_HB_SEEN="$EP_HB_U $EP_HB_L"
        EP_HB_SHOWN=$EP_HB_S
        say "$EP_HB_S s: $EP_HB_U of $EP_PACKAGE_COUNT packages unpacked, $EP_HB_L of $EP_PACKAGE_COUNT installed"
    done
}

# micromamba sees only the bundle, in a subshell: its root prefix and package cache in the work
# folder, given relative to it (micromamba reads both variables as YAML, "[" + value + "]": a
# ",", " #", "[" or "{" of a full path would split, cut or break them; it makes them absolute
# against its current folder, the work folder); no .condarc (--no-rc); no inherited CONDA_*,
# MAMBA_* or PYTHON* variable; every proxy pointed at a closed port (a package that fails its
# md5 is otherwise fetched again from its URL despite --offline: measured with 2.8.1); and HOME,
# the XDG folders and TMPDIR in the work folder, so that micromamba's registry of environments
# (~/.conda/environments.txt) and any cache stay out of the user's home.
say "installing into \"$EP_PREFIX\" (this can take a few minutes; progress every few seconds)"
ep_heartbeat &
EP_HB_PID=$!
(
    cd "$EP_WORK" || exit 9
    for EP_VAR in $(env | sed -n 's/^\(CONDA_[A-Za-z0-9_]*\)=.*$/\1/p; s/^\(MAMBA_[A-Za-z0-9_]*\)=.*$/\1/p'); do
        unset "$EP_VAR"
    done
    unset @@CLEARED_VARS@@
@@MICROMAMBA_ENV@@
    export HOME="$EP_WORK/home" TMPDIR="$EP_WORK/tmp"
    export XDG_CONFIG_HOME="$EP_WORK/home/.config" XDG_CACHE_HOME="$EP_WORK/home/.cache"
    export XDG_DATA_HOME="$EP_WORK/home/.local/share" XDG_STATE_HOME="$EP_WORK/home/.local/state"
    set -- @@MICROMAMBA_ARGS@@
    log "command: $*"
    "$@"
) >"$EP_WORK/step.log" 2>&1
EP_MMRC=$?
: >"$EP_WORK/mm.done"
wait "$EP_HB_PID"
rm -f "$EP_WORK/mm.done"
cat "$EP_WORK/step.log" >>"$EP_LOG" 2>/dev/null
log "micromamba exit code: $EP_MMRC"
# From here until success the prefix carries a marker: a rerun replaces it without --force.
if [ -d "$EP_PREFIX" ]; then : >"$EP_PREFIX/.envpack-incomplete"; fi
if [ "$EP_MMRC" -ne 0 ]; then
    cat "$EP_WORK/step.log" >&2
    err "micromamba failed (exit code $EP_MMRC); its messages are above and in the log."
    err "\"MD5 doesn't match\" means a package was damaged on its way here: copy the bundle again."
    finish 10
fi

# micromamba 2.x leaves a prefix holding only conda-meta/history when it gives up, so its exit
# code alone is not trusted: every package must have its conda-meta record.
set -f
IFS=$EP_NL
for EP_STEM in $EP_META; do
    if [ ! -f "$EP_PREFIX/conda-meta/$EP_STEM.json" ]; then
        unset IFS
        set +f
        err "micromamba exited 0, but \"$EP_STEM\" is not installed in \"$EP_PREFIX\"."
        log "not installed: \"$EP_STEM\""
        finish 11
    fi
done
unset IFS
set +f

# The environment's own files: activate.sh (the install path written into it: a sourced script
# cannot find its own folder in POSIX sh), uninstall.sh, a .condarc that keeps conda/mamba
# offline, the install path, and micromamba in bin/ (to manage it later, offline) unless the
# environment has its own.
EP_WRITEFAIL=
EP_Q=$(printf '%s\n' "$EP_PREFIX" | sed "s/'/'\\\\''/g")
mkdir -p "$EP_PREFIX/etc/envpack" "$EP_PREFIX/bin" 2>/dev/null
printf '%s\n' "$EP_PREFIX" >"$EP_PREFIX/etc/envpack/install-path.txt" 2>/dev/null ||
    EP_WRITEFAIL=etc/envpack/install-path.txt
# The environment's lock, for an update bundle to find its base.
printf '%s\n' @@LOCK_SHA256@@ >"$EP_PREFIX/etc/envpack/lock-sha256.txt" 2>/dev/null ||
    EP_WRITEFAIL=etc/envpack/lock-sha256.txt
{
    printf '%s\n' "# shellcheck shell=sh" "_envpack_prefix='$EP_Q'"
    cat "$EP_BUNDLE/prefix-files/activate.sh"
} >"$EP_PREFIX/activate.sh" 2>/dev/null || EP_WRITEFAIL=activate.sh
{ cp "$EP_BUNDLE/prefix-files/uninstall.sh" "$EP_PREFIX/uninstall.sh" &&
    chmod 755 "$EP_PREFIX/uninstall.sh"; } 2>/dev/null || EP_WRITEFAIL=uninstall.sh
cp "$EP_BUNDLE/prefix-files/condarc" "$EP_PREFIX/.condarc" 2>/dev/null || EP_WRITEFAIL=.condarc
if [ ! -e "$EP_PREFIX/bin/micromamba" ]; then
    cp "$EP_WORK/bin/micromamba" "$EP_PREFIX/bin/micromamba" 2>/dev/null ||
        EP_WRITEFAIL=bin/micromamba
fi
if [ -n "$EP_WRITEFAIL" ]; then
    err "could not write \"$EP_PREFIX/$EP_WRITEFAIL\"."
    log "could not write \"$EP_WRITEFAIL\""
    finish 12
fi
@@PIP_STEP@@
# Each post-install script runs with sh, in a subshell with the environment activated and the
# prefix as its working folder; its output is shown when it fails, and always logged.
set -f
IFS=$EP_NL
for EP_SCRIPT in $EP_POST_INSTALL; do
    unset IFS
    set +f
    EP_SCRIPT_NAME=${EP_SCRIPT##*/}
    say "running the post-install script \"$EP_SCRIPT_NAME\""
    log "post-install: \"$EP_SCRIPT_NAME\""
    mkdir -p "$EP_PREFIX/etc/envpack/post-install" 2>/dev/null
    if cp "$EP_BUNDLE/$EP_SCRIPT" "$EP_PREFIX/etc/envpack/post-install/" 2>/dev/null; then
        (
            cd "$EP_PREFIX" || exit 1
            # shellcheck source=/dev/null
            . ./activate.sh || exit 1
            sh "./etc/envpack/post-install/$EP_SCRIPT_NAME"
        ) >"$EP_WORK/step.log" 2>&1 </dev/null
        EP_PIRC=$?
    else
        echo "could not copy $EP_SCRIPT into the prefix" >"$EP_WORK/step.log"
        EP_PIRC=1
    fi
    cat "$EP_WORK/step.log" >>"$EP_LOG" 2>/dev/null
    log "post-install exit code: $EP_PIRC"
    if [ "$EP_PIRC" -ne 0 ]; then
        cat "$EP_WORK/step.log" >&2
        err "the post-install script \"$EP_SCRIPT_NAME\" failed (exit code $EP_PIRC); its output is above."
        finish 13
    fi
    set -f
    IFS=$EP_NL
done
unset IFS
set +f

rm -f "$EP_PREFIX/.envpack-incomplete" "$EP_WORK/.envpack-incomplete"
log "result: installed"
say "installed \"$EP_NAME\" into \"$EP_PREFIX\"."
say "activate it in a shell with no environment active:  . \"$EP_PREFIX/activate.sh\""
say "remove it with:  sh \"$EP_PREFIX/uninstall.sh\""
finish 0
