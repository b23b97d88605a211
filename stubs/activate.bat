@echo off
rem Activates the conda environment "@@NAME@@" (the folder of this file) in the current cmd.exe
rem window: CALL it there, or run envpack-shell.bat for a new window. Written by envpack's
rem setup.bat; needs no "conda init", no registry and no AutoRun. It refuses to stack onto
rem another active environment: start each environment from a clean cmd.exe.
rem Like conda's activate.bat, it reads its own lines as UTF-8 (chcp 65001) and gives the
rem console its code page back at the end.
rem No FOR /F reads a command's output (that would start a child cmd.exe, which runs the user's
rem AutoRun): commands write to a scratch file in %TEMP%, which FOR /F reads. The user's PATH is
rem never expanded with %...% in a command line: a quoted entry with "&" in it would turn the
rem rest into a command, and a long one would pass cmd.exe's 8191-character line limit. It
rem reaches the new PATH as a FOR variable (substituted after the line is parsed) instead, and
rem its length is checked first, before anything is changed.
set "_ENVPACK_RC=0"
set "_ENVPACK_CP="
set "_ENVPACK_OUT=%TEMP%\envpack-activate-%RANDOM%%RANDOM%.txt"
chcp >"%_ENVPACK_OUT%" 2>nul
if exist "%_ENVPACK_OUT%" for /f "usebackq tokens=2 delims=:" %%C in ("%_ENVPACK_OUT%") do set "_ENVPACK_CP=%%C"
if defined _ENVPACK_CP set "_ENVPACK_CP=%_ENVPACK_CP: =%"
if defined _ENVPACK_CP set "_ENVPACK_CP=%_ENVPACK_CP:.=%"
if defined _ENVPACK_CP for /f "delims=0123456789" %%C in ("%_ENVPACK_CP%") do set "_ENVPACK_CP="
if "%_ENVPACK_CP%"=="0" set "_ENVPACK_CP="
if defined _ENVPACK_CP chcp 65001 >nul
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
rem Conda environments hard-code their own path: setup.bat recorded it, a moved copy warns.
set "_ENVPACK_WAS="
if exist "%_ENVPACK_PREFIX%\etc\envpack\install-path.txt" set /p "_ENVPACK_WAS=" <"%_ENVPACK_PREFIX%\etc\envpack\install-path.txt"
if defined _ENVPACK_WAS set "_ENVPACK_WAS=%_ENVPACK_WAS:"=%"
if not defined _ENVPACK_WAS goto :_envpack_not_moved
if /i "%_ENVPACK_WAS%"=="%_ENVPACK_PREFIX%" goto :_envpack_not_moved
echo activate: warning: "@@NAME@@" was installed in "%_ENVPACK_WAS%" and has been moved to 1>&2
echo activate: "%_ENVPACK_PREFIX%". Programs in it may fail: conda environments contain their 1>&2
echo activate: install path. Install it again with setup.bat into the folder where you want it. 1>&2
:_envpack_not_moved

rem The same PATH entries, in the same order, as "micromamba shell activate -s cmd.exe".
set "_ENVPACK_ADD=%_ENVPACK_PREFIX%;%_ENVPACK_PREFIX%\Library\mingw-w64\bin;%_ENVPACK_PREFIX%\Library\usr\bin;%_ENVPACK_PREFIX%\Library\bin;%_ENVPACK_PREFIX%\Scripts;%_ENVPACK_PREFIX%\bin"
if not defined PATH goto :_envpack_no_path
rem The length of the new PATH from file sizes: "set PATH" lists PATH and PATHEXT ("NAME=value"
rem + CRLF each), "set PATHEXT" the latter alone, and the new entries are written quoted: 10
rem bytes more than "new;old" in all. Bytes: a non-ASCII letter counts 2 or 3 times under code
rem page 65001, which errs on the safe side. 8000 leaves room below cmd.exe's limit of 8191 for
rem the "set PATH=...;%PATH%" lines of the packages' own activation scripts.
>"%_ENVPACK_OUT%" set PATH
type nul >"%_ENVPACK_OUT%.ext"
if defined PATHEXT >"%_ENVPACK_OUT%.ext" set PATHEXT
>"%_ENVPACK_OUT%.add" echo "%_ENVPACK_ADD%"
if not exist "%_ENVPACK_OUT%.add" goto :_envpack_no_scratch
set "_ENVPACK_N=0"
for %%F in ("%_ENVPACK_OUT%") do set "_ENVPACK_N=%%~zF"
for %%F in ("%_ENVPACK_OUT%.ext") do set /a "_ENVPACK_N-=%%~zF"
for %%F in ("%_ENVPACK_OUT%.add") do set /a "_ENVPACK_N+=%%~zF-10"
del /f /q "%_ENVPACK_OUT%.add" "%_ENVPACK_OUT%.ext" >nul 2>&1
if %_ENVPACK_N% GTR 8000 goto :_envpack_too_long
rem The old value reaches the new PATH only as a FOR variable. "set PATH" also lists PATHEXT and
rem any PATH... variable, so each is copied to _ENVPACK_X_<name># first, and "set
rem _ENVPACK_X_PATH#" then lists PATH's copy alone. ("path" would print PATH alone, but wine's
rem garbles a long one; no IF picks the line, as wine parses an IF after the substitution.)
for /f "usebackq tokens=1* delims==" %%K in ("%_ENVPACK_OUT%") do set "_ENVPACK_X_%%K#=%%L"
>"%_ENVPACK_OUT%.one" set _ENVPACK_X_PATH#
for /f "usebackq tokens=1* delims==" %%K in ("%_ENVPACK_OUT%.one") do set "PATH=%_ENVPACK_ADD%;%%L"
for /f "usebackq delims==" %%K in ("%_ENVPACK_OUT%") do set "_ENVPACK_X_%%K#="
del /f /q "%_ENVPACK_OUT%.one" >nul 2>&1
goto :_envpack_path_set
:_envpack_no_path
set "PATH=%_ENVPACK_ADD%"
:_envpack_path_set
set "CONDA_PREFIX=%_ENVPACK_PREFIX%"
set "CONDA_DEFAULT_ENV=%_ENVPACK_PREFIX%"
set "CONDA_SHLVL=1"
set "CONDA_PROMPT_MODIFIER=(@@NAME@@) "
if not defined PROMPT set "PROMPT=$P$G"
set "PROMPT=%CONDA_PROMPT_MODIFIER%%PROMPT%"
@@VARIABLES@@
rem The packages' activation scripts, CALLed by relative path from their folder, in the order
rem the folder lists them (by name on NTFS, as conda sorts them). A plain FOR over the pattern,
rem no "dir": no child cmd.exe, and no DIRCMD. "*.bat" also matches "x.batch" by its short name.
if not exist "%CONDA_PREFIX%\etc\conda\activate.d\" goto :_envpack_end
pushd "%CONDA_PREFIX%\etc\conda\activate.d"
for %%F in (*.bat) do if /i "%%~xF"==".bat" call ".\%%~nxF"
popd
goto :_envpack_end

:_envpack_too_long
echo activate: with "@@NAME@@" added, PATH would be %_ENVPACK_N% characters long; cmd.exe handles 1>&2
echo activate: at most 8000 here (8191 per command line). Nothing was changed. Remove folders 1>&2
echo activate: that are no longer needed from your PATH (in Settings, search for 1>&2
echo activate: "Edit environment variables for your account"), then open a new cmd.exe window. 1>&2
set "_ENVPACK_RC=1"
goto :_envpack_end
:_envpack_no_scratch
echo activate: cannot write a scratch file in "%TEMP%"; nothing was changed. 1>&2
set "_ENVPACK_RC=1"
:_envpack_end
del /f /q "%_ENVPACK_OUT%" >nul 2>&1
set "_ENVPACK_PREFIX=" & set "_ENVPACK_ADD=" & set "_ENVPACK_WAS=" & set "_ENVPACK_N=" & set "_ENVPACK_OUT="
if defined _ENVPACK_CP chcp %_ENVPACK_CP% >nul
set "_ENVPACK_CP=" & set "_ENVPACK_RC=" & exit /b %_ENVPACK_RC%
