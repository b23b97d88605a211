# shellcheck shell=sh disable=SC2154
# Activates the conda environment @@NAME@@ in the current shell:   . PREFIX/activate.sh
# Written into the prefix by envpack's setup.sh, which puts the line "_envpack_prefix='PREFIX'"
# above this comment (a sourced script cannot find its own folder in POSIX sh). Needs no
# "conda init" and changes no rc file. It refuses to stack onto another active environment:
# start each environment from a shell with none active. Works when sourced by sh (dash,
# busybox ash), bash and zsh (which runs it in sh emulation: unmatched globs stay literal).
# To leave the environment, close the shell (or start a new one).

_envpack_activate() {
    if [ -n "${ZSH_VERSION:-}" ]; then emulate -L sh; fi
    if [ -n "${CONDA_PREFIX:-}" ]; then
        if [ "$CONDA_PREFIX" = "$_envpack_prefix" ]; then
            echo "activate: @@NAME_TEXT@@ is already active in this shell."
            return 0
        fi
        echo "activate: another conda environment is active in this shell: \"$CONDA_PREFIX\"" >&2
        echo "activate: open a new shell with no environment active and activate @@NAME_TEXT@@ there." >&2
        return 1
    fi
    # Conda environments hard-code their own path: a moved or deleted copy is refused.
    if [ ! -d "$_envpack_prefix/conda-meta" ]; then
        echo "activate: \"$_envpack_prefix\" holds no conda environment (moved or removed?);" >&2
        echo "activate: install it again with setup.sh into the folder where you want it." >&2
        return 1
    fi
    # The packages' variables (etc/conda/env_vars.d), then the recipe's, as conda sets them.
@@VARIABLES@@
    CONDA_PREFIX=$_envpack_prefix
    CONDA_DEFAULT_ENV=@@NAME@@
    CONDA_SHLVL=1
    CONDA_PROMPT_MODIFIER="(@@NAME_TEXT@@) "
    PATH=$_envpack_prefix/bin${PATH:+:$PATH}
    export CONDA_PREFIX CONDA_DEFAULT_ENV CONDA_SHLVL CONDA_PROMPT_MODIFIER PATH
    if [ -n "${PS1:-}" ]; then PS1=$CONDA_PROMPT_MODIFIER$PS1; fi
    # The packages' activation scripts, in name order, as conda runs them.
    for _envpack_script in "$_envpack_prefix"/etc/conda/activate.d/*.sh; do
        if [ -f "$_envpack_script" ]; then
            # shellcheck source=/dev/null
            . "$_envpack_script"
        fi
    done
    unset _envpack_script
    return 0
}
_envpack_activate
_envpack_rc=$?
unset -f _envpack_activate
unset _envpack_prefix
# shellcheck disable=SC2317 # "return" ends a sourced file; "exit" only runs if it is executed
return "$_envpack_rc" 2>/dev/null || exit "$_envpack_rc"
