@echo off
rem Opens a cmd.exe with the conda environment "@@NAME@@" (the folder of this file) active; type
rem "exit" to leave it. Double-click it, or run it from a cmd.exe where no environment is active.
rem Written by envpack's setup.bat.
if not defined CONDA_PREFIX goto :_envpack_shell
echo envpack-shell: a conda environment is already active in this window: "%CONDA_PREFIX%" 1>&2
echo envpack-shell: run this from a cmd.exe window with no environment active. 1>&2
exit /b 1
:_envpack_shell
setlocal
set "ENVPACK_SHELL_CWD=%CD%"
rem activate.bat is CALLed by a relative path (CALL would mangle a "^" or "%" of the full path);
rem the new shell then returns to the folder this was started from. /D: no AutoRun. The shell is
rem %ComSpec% (cmd.exe by its full path), not whatever "cmd.exe" the current folder or PATH has.
set "ENVPACK_SHELL_COMSPEC=%ComSpec%"
if not defined ENVPACK_SHELL_COMSPEC set "ENVPACK_SHELL_COMSPEC=%SystemRoot%\System32\cmd.exe"
pushd "%~dp0"
"%ENVPACK_SHELL_COMSPEC%" /d /k "call .\activate.bat & cd /d "%%ENVPACK_SHELL_CWD%%" & set "ENVPACK_SHELL_CWD=" & set "ENVPACK_SHELL_COMSPEC=""
set "ENVPACK_SHELL_RC=%ERRORLEVEL%"
popd
endlocal & exit /b %ENVPACK_SHELL_RC%
