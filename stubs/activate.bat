@echo off
rem Activates the conda environment "@@NAME@@" (the folder of this file) in the current cmd.exe
rem window: CALL it there, or run envpack-shell.bat for a new window. Written by envpack's
rem setup.bat; needs no "conda init", no registry and no AutoRun. It refuses to stack onto
rem another active environment: start each environment from a clean cmd.exe.
rem With a "^" or "%" in the folder's path, CALL it by a relative path (pushd to it first):
rem CALL reads its line twice. Like conda's activate.bat, it reads its own lines as UTF-8
rem (chcp 65001) and gives the console its code page back at the end.
set "_ENVPACK_CP="
for /f "tokens=2 delims=:" %%C in ('chcp') do set "_ENVPACK_CP=%%C"
if defined _ENVPACK_CP set "_ENVPACK_CP=%_ENVPACK_CP: =%"
if defined _ENVPACK_CP set "_ENVPACK_CP=%_ENVPACK_CP:.=%"
if defined _ENVPACK_CP for /f "delims=0123456789" %%C in ("%_ENVPACK_CP%") do set "_ENVPACK_CP="
if "%_ENVPACK_CP%"=="0" set "_ENVPACK_CP="
if defined _ENVPACK_CP chcp 65001 >nul
set "_ENVPACK_RC=0"
set "_ENVPACK_PREFIX=%~dp0"
set "_ENVPACK_PREFIX=%_ENVPACK_PREFIX:~0,-1%"
if not defined CONDA_PREFIX goto :_envpack_activate
if /i "%CONDA_PREFIX%"=="%_ENVPACK_PREFIX%" goto :_envpack_active
echo activate: another conda environment is active in this window: "%CONDA_PREFIX%" 1>&2
echo activate: open a new cmd.exe window, with no environment active, and activate "@@NAME@@" there. 1>&2
set "_ENVPACK_RC=1"
goto :_envpack_end
:_envpack_active
echo activate: "@@NAME@@" is already active in this window.
goto :_envpack_end
:_envpack_activate
set "CONDA_PREFIX=%_ENVPACK_PREFIX%"
set "CONDA_DEFAULT_ENV=%_ENVPACK_PREFIX%"
set "CONDA_SHLVL=1"
set "CONDA_PROMPT_MODIFIER=(@@NAME@@) "
rem The same PATH entries, in the same order, as "micromamba shell activate -s cmd.exe".
set "PATH=%CONDA_PREFIX%;%CONDA_PREFIX%\Library\mingw-w64\bin;%CONDA_PREFIX%\Library\usr\bin;%CONDA_PREFIX%\Library\bin;%CONDA_PREFIX%\Scripts;%CONDA_PREFIX%\bin;%PATH%"
if not defined PROMPT set "PROMPT=$P$G"
set "PROMPT=%CONDA_PROMPT_MODIFIER%%PROMPT%"
@@VARIABLES@@
rem The packages' activation scripts, in name order, CALLed by relative path from their folder.
if not exist "%CONDA_PREFIX%\etc\conda\activate.d\*.bat" goto :_envpack_end
pushd "%CONDA_PREFIX%\etc\conda\activate.d"
for /f "delims=" %%F in ('dir /b /a-d /on *.bat 2^>nul') do call ".\%%F"
popd
:_envpack_end
set "_ENVPACK_PREFIX="
if defined _ENVPACK_CP chcp %_ENVPACK_CP% >nul
set "_ENVPACK_CP=" & set "_ENVPACK_RC=" & exit /b %_ENVPACK_RC%
