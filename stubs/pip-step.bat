@echo off
rem pip-step.bat PREFIX BUNDLE LOG: the bundle's PyPI wheels, installed after micromamba by the
rem environment's own pip, offline and hash-checked, nothing of the PC's pip set-up let in.
rem setup.bat runs it as: call "%~dp0pip-step.bat" "%PREFIX%" "%~dp0" "%LOG%"
rem and, because a called batch's exit code does not always survive CALL, then checks
rem "if errorlevel 1" and exits 14 itself. Exit codes: 0 done (or no wheels.txt), 14 pip failed.
setlocal EnableExtensions DisableDelayedExpansion
set "EP_PREFIX=%~1"
set "EP_BUNDLE=%~2"
set "EP_LOG=%~3"
if "%EP_BUNDLE:~-1%"=="\" set "EP_BUNDLE=%EP_BUNDLE:~0,-1%"
if not exist "%EP_BUNDLE%\wheels.txt" exit /b 0
if not exist "%EP_PREFIX%\python.exe" goto no_python
rem Every PIP_* variable would reach pip (an index URL, --user, a proxy, a cache dir): clear them.
rem No FOR /F over a command (a child cmd.exe runs the user's AutoRun): "set PIP_" goes to a
rem scratch file. "PIP_" itself is set first so that the listing is never empty and nothing needs
rem "2>nul" (with it, wine's cmd.exe writes nothing to the file). The redirection comes first:
rem wine reads "set PIP_ >f" as the prefix "PIP_ " (with the space), which matches nothing.
set "PIP_=1"
set "EP_PIPVARS=%EP_LOG%.pipvars.txt"
>"%EP_PIPVARS%" set PIP_
for /f "usebackq delims==" %%A in ("%EP_PIPVARS%") do set "%%A="
del /f /q "%EP_PIPVARS%" >nul 2>&1
set "PIP_CONFIG_FILE=NUL"
set "PYTHONNOUSERSITE=1"
set "PYTHONPATH="
set "PYTHONHOME="
set "PYTHONSTARTUP="
set "PYTHONUSERBASE="
echo pip: installing the bundle's wheels into %EP_PREFIX%>>"%EP_LOG%"
"%EP_PREFIX%\python.exe" -s -m pip install --no-index --no-deps --require-hashes --no-cache-dir --isolated --disable-pip-version-check --no-warn-script-location --find-links "%EP_BUNDLE%\wheels" -r "%EP_BUNDLE%\wheels.txt" >>"%EP_LOG%" 2>&1
if errorlevel 1 goto failed
echo pip: done>>"%EP_LOG%"
exit /b 0

:failed
echo pip: installing the wheels failed; see above in this log>>"%EP_LOG%"
echo ERROR: installing the Python wheels failed; see "%EP_LOG%"
exit /b 14

:no_python
echo pip: no python.exe in %EP_PREFIX%>>"%EP_LOG%"
echo ERROR: the environment has no python.exe, so its wheels cannot be installed
exit /b 14
