@echo off
rem envpack @@ENVPACK_VERSION@@: the offline update of the conda environment "@@NAME@@" (@@PLATFORM@@)
rem from lock @@OLD8@@ to lock @@NEW8@@.
rem
rem   update.bat [PREFIX] [/S] [/FORCE] [/?]
rem
rem   PREFIX   the installed environment (default: the install folder the recipe names)
rem   /S       silent: do not ask for confirmation
rem   /FORCE   update an environment that is not exactly lock @@OLD8@@ (drifted by hand, or at
rem            another lock); the differences are listed first
rem
rem Exit codes (also listed by /?):
rem    0  updated, or already at lock @@NEW8@@
rem    1  bad command line
rem    2  cancelled at the confirmation prompt
rem    3  a conda environment is active in this window (CONDA_PREFIX is set)
rem    5  the update bundle is incomplete (a file missing or of the wrong size)
rem    6  PREFIX is not an installed conda environment
rem    9  could not prepare the work folder or write the marker, or micromamba.exe could not be
rem       started from the work folder (an antivirus?)
rem   10  micromamba failed; its messages are shown and logged
rem   11  micromamba exited 0 but the environment is not lock @@NEW8@@
rem   12  could not record the new lock in the prefix
rem   13  a post-install script failed
rem   14  the environment has drifted from lock @@OLD8@@ (the differences are listed); /FORCE
rem   15  the environment is at another lock: apply the update it names first; /FORCE
rem   16  another update was interrupted in PREFIX: run that update's update.bat again first
rem   17  no micromamba: neither in this bundle nor in PREFIX\Scripts
rem
rem The same rules as setup.bat: plain cmd.exe, no delayed expansion, no backward GOTO, no "&&"
rem or "||", no FOR /F over a command (a command's output goes to a file FOR /F reads), every
rem path expanded inside quotes, micromamba's root and package folder given relative to its work
rem folder (libmamba reads those variables as YAML), proxies pointed at a dead address.
rem
rem An update is marked in the prefix (.envpack-update) before micromamba starts. A run that
rem finds this update's marker finishes the update (every package it needs is in this bundle):
rem an interrupted update is never left as a silent mix of both locks. The one exception: when
rem cmd.exe could not start micromamba.exe at all and no micromamba ran before in this update,
rem nothing has changed the environment, and the marker is taken away (:micromamba_not_started).
rem
rem While micromamba runs, a second copy of this script prints its progress (see :heartbeat).
setlocal EnableExtensions DisableDelayedExpansion
set "DIRCMD="
if defined EP_HEARTBEAT goto :heartbeat
set "EP_HB_SELF=%~f0"
set "EP_RC=1"
set "EP_LOG="
set "EP_PREFIX="
set "EP_WORK="
set "EP_BUNDLE=%~dp0"
set "EP_OLD=@@OLD_SHA@@"
set "EP_NEW=@@NEW_SHA@@"
title envpack update: @@NAME@@ @@OLD8@@ to @@NEW8@@

rem ---------------------------------------------------------------- arguments
set "EP_SILENT="
set "EP_FORCE="
set "EP_HELP="
set "EP_BADARG="
set "EP_PREFIX_ARG="
set "EP_ARG=%~1"
if defined EP_ARG call :arg
set "EP_ARG=%~2"
if defined EP_ARG call :arg
set "EP_ARG=%~3"
if defined EP_ARG call :arg
set "EP_ARG=%~4"
if defined EP_ARG call :arg
if defined EP_HELP goto :usage
if not defined EP_BADARG goto :args_ok
echo update: unexpected argument: "%EP_BADARG%"
echo update: run "%~nx0 /?" to see the usage.
goto :finish
:args_ok

if not defined CONDA_PREFIX goto :no_conda
echo update: a conda environment is active in this window: "%CONDA_PREFIX%"
echo update: open a new cmd.exe window (not an Anaconda Prompt) and run update.bat there.
set "EP_RC=3"
goto :finish
:no_conda

echo update: checking the update bundle in "%EP_BUNDLE%"
set "EP_BAD=0"
@@CHECK_FILES@@
if "%EP_BAD%"=="0" goto :bundle_ok
echo update: the update bundle is incomplete (%EP_BAD% files missing or damaged). Copy it again.
set "EP_RC=5"
goto :finish
:bundle_ok

rem The default is the recipe's install folder, as setup.bat has it (relative: to this folder).
set "EP_PREFIX=@@DEFAULT_PREFIX@@"
set "EP_T=%EP_PREFIX%??"
if "%EP_T:~1,1%"==":" goto :default_absolute
if "%EP_T:~0,1%"=="\" goto :default_absolute
set "EP_PREFIX=%EP_BUNDLE%%EP_PREFIX%"
:default_absolute
if defined EP_PREFIX_ARG set "EP_PREFIX=%EP_PREFIX_ARG%"
for %%P in ("%EP_PREFIX%") do set "EP_PREFIX=%%~fP"
if "%EP_PREFIX:~-1%"=="\" set "EP_PREFIX=%EP_PREFIX:~0,-1%"
if exist "%EP_PREFIX%\conda-meta\" goto :prefix_ok
echo update: "%EP_PREFIX%" is not an installed conda environment (no conda-meta folder).
echo update: name the environment's folder: %~nx0 PREFIX
set "EP_RC=6"
goto :finish
:prefix_ok
set "EP_WORK=%EP_PREFIX%.envpack-update"
set "EP_HASHFILE=%EP_PREFIX%\etc\envpack\lock-sha256.txt"
set "EP_MARKER=%EP_PREFIX%\.envpack-update"
set "EP_OUT=%EP_PREFIX%\.envpack-update-drift.txt"

rem ---------------------------------------------------------------- where the prefix stands
rem An interrupted update first: this one is finished; another one must be finished by its own.
set "EP_RESUME="
set "EP_TOUCHED="
set "EP_PEND_OLD="
set "EP_PEND_NEW="
if not exist "%EP_MARKER%" goto :no_marker
for /f "usebackq tokens=1" %%A in ("%EP_MARKER%") do set "EP_PEND_OLD=%%A"
for /f "usebackq tokens=2" %%A in ("%EP_MARKER%") do set "EP_PEND_NEW=%%A"
if not "%EP_PEND_NEW%"=="%EP_NEW%" goto :other_pending
echo update: an earlier run of this update was interrupted; finishing it.
set "EP_RESUME=1"
rem A run before this one may have changed the environment.
set "EP_TOUCHED=1"
goto :state_known
:other_pending
echo update: an update of "%EP_PREFIX%" to lock %EP_PEND_NEW:~0,8% was interrupted.
echo update: run that update's update.bat again first (@@NAME@@-@@PLATFORM@@-update-%EP_PEND_OLD:~0,8%-to-%EP_PEND_NEW:~0,8%).
set "EP_RC=16"
goto :finish
:no_marker

set "EP_HAVE="
if exist "%EP_HASHFILE%" for /f "usebackq tokens=1" %%A in ("%EP_HASHFILE%") do set "EP_HAVE=%%A"
if not "%EP_HAVE%"=="%EP_NEW%" goto :not_current
echo update: "%EP_PREFIX%" is already at lock @@NEW8@@; nothing to do.
set "EP_RC=0"
goto :finish
:not_current
set "EP_WRONG_BASE="
if not defined EP_HAVE goto :base_checked
if "%EP_HAVE%"=="%EP_OLD%" goto :base_checked
set "EP_WRONG_BASE=1"
echo update: "%EP_PREFIX%" is at lock %EP_HAVE:~0,8%, but this update goes from lock @@OLD8@@ to @@NEW8@@.
echo update: apply the update from %EP_HAVE:~0,8% to @@OLD8@@ first (@@NAME@@-@@PLATFORM@@-update-%EP_HAVE:~0,8%-to-@@OLD8@@).
:base_checked

rem Every conda-meta record against lock @@OLD8@@ by its name-version-build: a package added,
rem removed, or changed by hand shows as an unexpected or a missing record. (The records' md5 is
rem the bundle's: micromamba wrote them from its checked packages.)
del /f /q "%EP_OUT%" >nul 2>&1
@@EXPECT_BASE@@
rem The wildcard is relative to the folder: cmd.exe globs a quoted pattern, wine's does not,
rem and the prefix's own characters never reach the pattern unquoted.
pushd "%EP_PREFIX%\conda-meta"
for %%F in (*.json) do if not defined EP_K_%%~nF >>"%EP_OUT%" echo   not in lock @@OLD8@@: %%~nF
popd
@@CHECK_BASE@@
set "EP_DRIFT="
if exist "%EP_OUT%" set "EP_DRIFT=1"
if not defined EP_DRIFT goto :drift_checked
echo update: "%EP_PREFIX%" is not exactly lock @@OLD8@@:
type "%EP_OUT%"
:drift_checked
set "EP_REFUSE="
if defined EP_WRONG_BASE set "EP_REFUSE=15"
if defined EP_DRIFT set "EP_REFUSE=14"
if not defined EP_REFUSE goto :state_known
if defined EP_FORCE goto :forced
if "%EP_REFUSE%"=="14" echo update: refusing to update a changed environment; /FORCE updates it anyway.
if "%EP_REFUSE%"=="15" echo update: refusing; /FORCE updates it anyway.
del /f /q "%EP_OUT%" >nul 2>&1
set "EP_RC=%EP_REFUSE%"
goto :finish
:forced
echo update: /FORCE: updating anyway. Records listed above that lock @@NEW8@@ does not replace stay
echo        as they are; the recorded lock becomes @@NEW8@@.
:state_known
del /f /q "%EP_OUT%" >nul 2>&1

echo.
echo   Environment   @@NAME@@ (@@PLATFORM@@)
echo   Folder        "%EP_PREFIX%"
echo   Update        lock @@OLD8@@ to @@NEW8@@: @@SUMMARY@@
echo.
if defined EP_SILENT goto :confirmed
set "EP_ANSWER="
set /p "EP_ANSWER=Update now? [y/N] "
if defined EP_ANSWER set "EP_ANSWER=%EP_ANSWER:"=%"
if /i "%EP_ANSWER%"=="y" goto :confirmed
if /i "%EP_ANSWER%"=="yes" goto :confirmed
echo update: cancelled; nothing was changed.
set "EP_RC=2"
goto :finish
:confirmed

rem ---------------------------------------------------------------- the update
if exist "%EP_WORK%" rmdir /s /q "\\?\%EP_WORK%" >nul 2>&1
if exist "%EP_WORK%" rmdir /s /q "%EP_WORK%" >nul 2>&1
if exist "%EP_WORK%" goto :work_failed
mkdir "%EP_WORK%\pkgs" >nul 2>&1
mkdir "%EP_WORK%\root" >nul 2>&1
mkdir "%EP_WORK%\bin" >nul 2>&1
mkdir "%EP_WORK%\home" >nul 2>&1
mkdir "%EP_WORK%\tmp" >nul 2>&1
if not exist "%EP_WORK%\bin\" goto :work_failed
set "EP_LOG=%EP_WORK%\envpack-update.log"
>"%EP_LOG%" echo envpack @@ENVPACK_VERSION@@ update.bat: "@@NAME@@" (@@PLATFORM@@) lock @@OLD_SHA@@ to @@NEW_SHA@@
>>"%EP_LOG%" echo started: %DATE% %TIME%
>>"%EP_LOG%" echo prefix: "%EP_PREFIX%"
if defined EP_FORCE >>"%EP_LOG%" echo /FORCE given
if not exist "%EP_LOG%" goto :work_failed

rem micromamba: this bundle's when it carries one (a new micromamba), else the environment's own.
set "EP_COPYFAIL="
@@COPY_TOOLS@@
if exist "%EP_WORK%\bin\micromamba.exe" goto :have_micromamba
copy /b /y "%EP_PREFIX%\Scripts\micromamba.exe" "%EP_WORK%\bin\" >nul 2>&1
pushd "%EP_PREFIX%\Scripts"
for %%D in (*.dll) do copy /b /y "%%~fD" "%EP_WORK%\bin\" >nul 2>&1
popd
if exist "%EP_WORK%\bin\micromamba.exe" goto :have_micromamba
echo update: no micromamba: this bundle carries none and "%EP_PREFIX%\Scripts\micromamba.exe" is missing.
set "EP_RC=17"
goto :finish
:have_micromamba
@@COPY_FILES@@
if not defined EP_COPYFAIL goto :copied
echo update: could not copy "%EP_COPYFAIL%" into "%EP_WORK%" (disk full, or no permission?).
>>"%EP_LOG%" echo could not copy "%EP_COPYFAIL%" into the work folder
set "EP_RC=9"
goto :finish
:work_failed
echo update: could not create the work folder "%EP_WORK%" (no permission, or a program holds a
echo        file in an old one?).
set "EP_RC=9"
goto :finish
:copied

rem The marker, before micromamba starts: from here until the end a rerun finishes this update.
>"%EP_MARKER%" echo %EP_OLD% %EP_NEW%
if not exist "%EP_MARKER%" goto :work_failed

rem What lock @@OLD8@@ has and @@NEW8@@ drops or replaces, where it is still installed (a resumed
rem run finds some already gone). Conda package names need no quoting.
set "EP_RM="
@@REMOVE_NAMES@@
@@CLEAR_VARS@@
call :clear_prefixed 2>nul
set "EP_MMTMP="
for %%T in ("%EP_WORK%\tmp") do set "EP_MMTMP=%%~sT"
if not "%EP_MMTMP: =%"=="%EP_MMTMP%" set "EP_MMTMP="
set "EP_STEP=remove"
if not defined EP_RM goto :removed
echo update: removing%EP_RM%
>>"%EP_LOG%" echo removing:%EP_RM%
set "EP_HB_SAY=update"
set "EP_HB_MODE=remove"
set "EP_HB_TOTAL=0"
for %%N in (%EP_RM%) do set /a "EP_HB_TOTAL+=1"
call :hb_base
call :hb_start
setlocal
@@MICROMAMBA_ENV@@
if defined EP_MMTMP set "TMP=%EP_MMTMP%"
if defined EP_MMTMP set "TEMP=%EP_MMTMP%"
pushd "%EP_WORK%"
@@REMOVE_COMMAND@@ >"%EP_WORK%\step.log" 2>&1
set "EP_MMRC=%ERRORLEVEL%"
popd
endlocal & set "EP_MMRC=%EP_MMRC%"
call :hb_wait
type "%EP_WORK%\step.log" >>"%EP_LOG%"
>>"%EP_LOG%" echo micromamba remove exit code: %EP_MMRC%
rem An antivirus may quarantine micromamba.exe, or refuse to start it, after its copy was checked:
rem cmd.exe then says only that it does not recognize the command (exit code 9009).
if "%EP_MMRC%"=="0" goto :remove_ran
if "%EP_MMRC%"=="9009" goto :micromamba_not_started
if not exist "%EP_WORK%\bin\micromamba.exe" goto :micromamba_not_started
type "%EP_WORK%\step.log"
echo update: micromamba could not remove the old packages (exit code %EP_MMRC%).
set "EP_RC=10"
goto :finish
:remove_ran
set "EP_TOUCHED=1"
:removed
set "EP_STEP=install"

@@INSTALL_STEP@@

rem Exactly lock @@NEW8@@ now: every record it has, none of those it replaced.
set "EP_NOTINSTALLED="
set "EP_LEFTOVER="
@@CHECK_TARGET@@
if defined EP_NOTINSTALLED echo update: micromamba exited 0, but "%EP_NOTINSTALLED%" is not installed.
if defined EP_LEFTOVER echo update: micromamba exited 0, but "%EP_LEFTOVER%" is still installed.
if defined EP_NOTINSTALLED set "EP_RC=11"
if defined EP_LEFTOVER set "EP_RC=11"
if "%EP_RC%"=="11" goto :finish

set "EP_WRITEFAIL="
@@INSTALL_TOOLS@@
mkdir "%EP_PREFIX%\etc\envpack" >nul 2>&1
>"%EP_HASHFILE%" echo %EP_NEW%
set "EP_T="
if exist "%EP_HASHFILE%" for /f "usebackq tokens=1" %%A in ("%EP_HASHFILE%") do set "EP_T=%%A"
if not "%EP_T%"=="%EP_NEW%" set "EP_WRITEFAIL=etc\envpack\lock-sha256.txt"
if not defined EP_WRITEFAIL goto :written
echo update: could not write "%EP_WRITEFAIL%" in "%EP_PREFIX%".
set "EP_RC=12"
goto :finish
:written

@@POST_INSTALL@@

del /f /q "%EP_MARKER%" >nul 2>&1
>>"%EP_LOG%" echo result: updated to %EP_NEW%
echo update: "%EP_PREFIX%" is now at lock @@NEW8@@.
set "EP_RC=0"
goto :finish

rem No IF before these ECHOs: wine's cmd.exe ends the script at a ")" in an IF's ECHO text.
:micromamba_not_started
if not exist "%EP_WORK%\bin\micromamba.exe" goto :micromamba_removed
echo update: "%EP_WORK%\bin\micromamba.exe" could not be started: exit code %EP_MMRC%.
goto :micromamba_blocked
:micromamba_removed
echo update: "%EP_WORK%\bin\micromamba.exe" was removed from the work folder after it was copied there.
:micromamba_blocked
echo update: an antivirus may have blocked or quarantined it: allow it, then run update.bat again.
>>"%EP_LOG%" echo micromamba.exe could not be started from the work folder (%EP_STEP% step)
set "EP_RC=9"
rem Exit code 9009: cmd.exe did not start it. When no micromamba ran before in this update (no
rem earlier step, no interrupted run), the environment is exactly as it was: the marker goes,
rem and the next run checks the environment afresh. Otherwise the marker stays (:finish says
rem so), and the next run finishes the update.
if defined EP_TOUCHED goto :finish
if not "%EP_MMRC%"=="9009" goto :finish
del /f /q "%EP_MARKER%" >nul 2>&1
if exist "%EP_MARKER%" goto :finish
echo update: nothing was changed in "%EP_PREFIX%".
>>"%EP_LOG%" echo nothing was changed; the update marker was removed
goto :finish

:post_failed
type "%EP_WORK%\step.log"
echo update: the post-install script "%EP_SCRIPT%" failed (exit code %EP_PIRC%); its output is above.
>>"%EP_LOG%" echo post-install script failed: "%EP_SCRIPT%"
set "EP_RC=13"
goto :finish

:usage
echo Updates the conda environment "@@NAME@@" (@@PLATFORM@@) offline from lock @@OLD8@@ to lock @@NEW8@@.
echo.
echo   %~nx0 [PREFIX] [/S] [/FORCE]
echo.
echo   PREFIX    the installed environment. Default: "@@DEFAULT_PREFIX@@"
echo   /S        do not ask for confirmation
echo   /FORCE    update even if the environment is not exactly lock @@OLD8@@
echo.
echo Exit codes: 0 updated or already current; 1 bad command line; 2 cancelled; 3 a conda
echo environment is active; 5 bundle incomplete; 6 PREFIX is no environment; 9 work folder
echo failed, or micromamba.exe could not be started (an antivirus?); 10 micromamba failed; 11 not
echo at the new lock afterwards; 12 could not record the lock; 13 a post-install script failed;
echo 14 drifted; 15 at another lock; 16 another update was interrupted; 17 no micromamba.
set "EP_RC=0"
goto :finish

rem ---------------------------------------------------------------- the end of every run
:finish
if not defined EP_LOG goto :finish_console
if not "%EP_RC%"=="0" >>"%EP_LOG%" echo result: FAILED, exit code %EP_RC%
>>"%EP_LOG%" echo finished: %DATE% %TIME%
if exist "%EP_PREFIX%\" copy /b /y "%EP_LOG%" "%EP_PREFIX%\envpack-update.log" >nul 2>&1
call :hb_clean
if exist "%EP_PREFIX%\envpack-update.log" rmdir /s /q "\\?\%EP_WORK%" >nul 2>&1
if exist "%EP_PREFIX%\envpack-update.log" rmdir /s /q "%EP_WORK%" >nul 2>&1
if "%EP_RC%"=="0" goto :finish_console
if exist "%EP_MARKER%" echo update: the update is unfinished; run update.bat again to finish it.
:finish_console
exit /b %EP_RC%

rem ---------------------------------------------------------------- subroutines
:arg
if /i "%EP_ARG%"=="/S" (set "EP_SILENT=1" & goto :eof)
if /i "%EP_ARG%"=="/FORCE" (set "EP_FORCE=1" & goto :eof)
if "%EP_ARG%"=="/?" (set "EP_HELP=1" & goto :eof)
if /i "%EP_ARG%"=="/H" (set "EP_HELP=1" & goto :eof)
if /i "%EP_ARG%"=="--help" (set "EP_HELP=1" & goto :eof)
if "%EP_ARG:~0,1%"=="/" (set "EP_BADARG=%EP_ARG%" & goto :eof)
if defined EP_PREFIX_ARG (set "EP_BADARG=%EP_ARG%" & goto :eof)
set "EP_PREFIX_ARG=%EP_ARG%"
goto :eof

:clear_prefixed
>"%EP_WORK%\vars.txt" set CONDA_
>>"%EP_WORK%\vars.txt" set MAMBA_
for /f "usebackq delims==" %%V in ("%EP_WORK%\vars.txt") do set "%%V="
del /f /q "%EP_WORK%\vars.txt" >nul 2>&1
goto :eof

:badfile
set /a EP_BAD+=1
if exist "%EP_BUNDLE%%EP_FILE%" echo update:   wrong size: "%EP_FILE%"
if not exist "%EP_BUNDLE%%EP_FILE%" echo update:   missing: "%EP_FILE%"
goto :eof

:postinstall
set "EP_PIRC=1"
mkdir "%EP_PREFIX%\etc\envpack\post-install" >nul 2>&1
copy /b /y "%EP_BUNDLE%post-install\%EP_SCRIPT%" "%EP_PREFIX%\etc\envpack\post-install\" >nul 2>&1
if not exist "%EP_PREFIX%\etc\envpack\post-install\%EP_SCRIPT%" goto :eof
echo update: running the post-install script "%EP_SCRIPT%"
>>"%EP_LOG%" echo post-install: "%EP_SCRIPT%"
setlocal
pushd "%EP_PREFIX%"
call .\activate.bat >"%EP_WORK%\step.log" 2>&1
if errorlevel 1 (popd & endlocal & goto :eof)
call ".\etc\envpack\post-install\%EP_SCRIPT%" >>"%EP_WORK%\step.log" 2>&1
set "EP_PIRC=%ERRORLEVEL%"
popd
endlocal & set "EP_PIRC=%EP_PIRC%"
type "%EP_WORK%\step.log" >>"%EP_LOG%"
>>"%EP_LOG%" echo post-install exit code: %EP_PIRC%
goto :eof

@@HEARTBEAT@@
