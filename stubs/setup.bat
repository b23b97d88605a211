@echo off
rem envpack @@ENVPACK_VERSION@@: the offline installer of the conda environment "@@NAME@@" (@@PLATFORM@@).
rem
rem   setup.bat [PREFIX] [/S] [/FORCE] [/?]
rem
rem Installs the conda environment of this folder into PREFIX with no network, no administrator
rem rights, and without writing the registry, the user or system PATH, or cmd.exe's AutoRun.
rem   PREFIX   the folder to install into (default: see /?); it must be absent or empty
rem   /S       silent: do not ask for confirmation
rem   /FORCE   replace PREFIX when it already holds a conda environment
rem
rem Exit codes (also listed by /?):
rem    0  installed
rem    1  bad command line
rem    2  cancelled at the confirmation prompt
rem    3  a conda environment is active in this window (CONDA_PREFIX is set)
rem    4  this Windows cannot run the environment (not 64-bit, not a Windows bundle, or an x64
rem       environment on Windows 10 on ARM, which cannot emulate x64)
rem    5  the bundle is incomplete: a file is missing or has the wrong size (also: setup.bat was
rem       started from inside a zip file, without "Extract All" first)
rem    6  PREFIX cannot be used: not empty, a file, a drive root, a network path, or it contains
rem       "!", "%%" or "^" (micromamba's own scripts break on them)
rem    7  not enough free disk space
rem    8  a path in the environment would exceed 259 characters and long paths are off
rem    9  could not prepare the install (delete the old prefix, create or fill the work folder,
rem       or start micromamba.exe from it)
rem   10  micromamba failed (for example a damaged package); its messages are shown and logged
rem   11  micromamba exited 0 but packages are missing from the environment
rem   12  could not write Scripts\micromamba.exe, activate.bat, envpack-shell.bat, uninstall.bat
rem       or .condarc
rem   13  a post-install script failed
rem   20  self-extracting file only: tar.exe is not available
rem   21  self-extracting file only: the extraction failed
rem
rem Written for plain cmd.exe: no PowerShell, findstr, certutil, where, choice or timeout; no
rem delayed expansion (it would eat the "!" of a path); no backward GOTO (the self-extracting
rem file is this script followed by a zip, and a backward GOTO makes cmd.exe read all of it to
rem find the label); no "&&" or "||". Every path is expanded inside quotes. No FOR /F over a
rem command's output: that runs a child cmd.exe, which runs the user's AutoRun (a broken "conda
rem init" hook prints errors, one with "cd /d" changes what a relative command sees); a
rem command's output goes to a scratch file that FOR /F then reads. DIRCMD is cleared, so
rem that "dir" prints what is parsed here whatever the user's defaults (/s, /p, /-b...).
rem While micromamba runs, a second copy of this script prints its progress (see :heartbeat);
rem it waits with ping.exe, the one wait every Windows has that works with input redirected.
setlocal EnableExtensions DisableDelayedExpansion
set "DIRCMD="
if defined EP_HEARTBEAT goto :heartbeat
rem Scratch files for command output, before the work folder exists.
set "EP_SCRATCH=%TEMP%"
if not defined EP_SCRATCH set "EP_SCRATCH=%TMP%"
if not defined EP_SCRATCH set "EP_SCRATCH=%~dp0."
set "EP_OUT=%EP_SCRATCH%\envpack-setup-%RANDOM%%RANDOM%.txt"

rem The console switches to UTF-8 for the run, for non-ASCII paths (mamba#3097, #4054), and
rem back at the end. chcp's message is localized ("Aktive Codepage: 850."): keep the digits.
set "EP_CP="
chcp >"%EP_OUT%" 2>nul
for /f "usebackq tokens=2 delims=:" %%C in ("%EP_OUT%") do set "EP_CP=%%C"
del /f /q "%EP_OUT%" >nul 2>&1
if defined EP_CP set "EP_CP=%EP_CP: =%"
if defined EP_CP set "EP_CP=%EP_CP:.=%"
if defined EP_CP for /f "delims=0123456789" %%C in ("%EP_CP%") do set "EP_CP="
if "%EP_CP%"=="0" set "EP_CP="
if defined EP_CP chcp 65001 >nul
title envpack setup: @@NAME@@
set "EP_RC=1"
set "EP_LOG="
set "EP_PREFIX="
set "EP_WORK="

rem ---------------------------------------------------------------- arguments
@@ARG_INIT@@set "EP_SILENT="
set "EP_FORCE="
set "EP_HELP="
set "EP_BADARG="
set "EP_PREFIX_ARG="
set "EP_EXTRACT_DIR="
set "EP_EXPECT="
set "EP_ARG=%~1"
if defined EP_ARG call :arg
set "EP_ARG=%~2"
if defined EP_ARG call :arg
set "EP_ARG=%~3"
if defined EP_ARG call :arg
set "EP_ARG=%~4"
if defined EP_ARG call :arg
set "EP_ARG=%~5"
if defined EP_ARG call :arg
set "EP_ARG=%~6"
if defined EP_ARG call :arg
set "EP_ARG=%~7"
if defined EP_ARG call :arg
set "EP_ARG=%~8"
if defined EP_ARG call :arg
set "EP_ARG=%~9"
if defined EP_ARG call :arg
if defined EP_EXPECT set "EP_BADARG=%EP_EXPECT% needs a folder after it"
if defined EP_HELP goto :usage
if not defined EP_BADARG goto :args_ok
echo setup: unexpected argument: "%EP_BADARG%"
echo setup: run "%~nx0 /?" to see the usage.
set "EP_RC=1"
goto :finish
:args_ok

rem Started by a double-click (Explorer runs cmd.exe /c "setup.bat"), the window would close
rem before the result could be read: it then waits for a key at the end, unless /S was given.
set "EP_PAUSE="
if defined EP_SILENT goto :pause_known
set "EP_T=%CMDCMDLINE%"
if not defined EP_T goto :pause_known
set "EP_T=%EP_T:"=%"
if /i not "%EP_T: /C =%"=="%EP_T%" set "EP_PAUSE=1"
:pause_known

rem ---------------------------------------------------------------- checks that change nothing
rem The user's rule: environments are created (and activated) from a clean shell only.
if not defined CONDA_PREFIX goto :no_conda
echo setup: a conda environment is active in this window: "%CONDA_PREFIX%"
echo setup: open a new cmd.exe window (not an Anaconda Prompt) and run setup.bat there.
set "EP_RC=3"
goto :finish
:no_conda

set "EP_ARCH=%PROCESSOR_ARCHITECTURE%"
if defined PROCESSOR_ARCHITEW6432 set "EP_ARCH=%PROCESSOR_ARCHITEW6432%"
set "EP_ARCH_OK="
@@ARCH_CHECK@@
if defined EP_ARCH_OK goto :arch_ok
echo setup: this environment is built for @@PLATFORM@@; this Windows reports a "%EP_ARCH%" processor.
set "EP_RC=4"
goto :finish
:arch_ok
rem Windows on ARM runs x64 programs only from Windows 11 (build 22000); Windows 10 on ARM
rem emulates 32-bit x86 only. The build number comes from the registry (not localized).
if not defined EP_X64_ON_ARM goto :emulation_ok
set "EP_BUILD="
reg query "HKLM\SOFTWARE\Microsoft\Windows NT\CurrentVersion" /v CurrentBuildNumber >"%EP_OUT%" 2>nul
for /f "usebackq tokens=1,3" %%A in ("%EP_OUT%") do if /i "%%A"=="CurrentBuildNumber" set "EP_BUILD=%%B"
del /f /q "%EP_OUT%" >nul 2>&1
if defined EP_BUILD for /f "delims=0123456789" %%A in ("%EP_BUILD%") do set "EP_BUILD="
if not defined EP_BUILD goto :emulation_ok
if %EP_BUILD% GEQ 22000 goto :emulation_ok
echo setup: this environment is built for @@PLATFORM@@ (x64). Windows on ARM runs x64 programs only
echo        from Windows 11 (build 22000); this PC runs build %EP_BUILD%. Upgrade to Windows 11, or
echo        ask for a win-arm64 build of the environment.
set "EP_RC=4"
goto :finish
:emulation_ok

rem Run as administrator, %%LOCALAPPDATA%% and the default folder are the administrator's, and
rem what is installed may not be writable by the user later. fltmc succeeds only when elevated.
"%SystemRoot%\System32\fltmc.exe" >nul 2>&1
if errorlevel 1 goto :not_elevated
echo setup: warning: this window runs as administrator. The environment will belong to the
echo        administrator's account; to install it for yourself, run setup.bat from a normal window.
:not_elevated

@@BUNDLE_SOURCE@@

rem Opened from inside a zip, Explorer (%%TEMP%%\Temp1_x.zip\) or 7-Zip (%%TEMP%%\7zO...) copies
rem this one file to a temporary folder: the rest of the bundle is not there.
if exist "%EP_BUNDLE%@@EXPLICIT_FILE@@" goto :not_in_zip
set "EP_T=%EP_BUNDLE:.zip\=%"
set "EP_T=%EP_T:\7zO=%"
if "%EP_T%"=="%EP_BUNDLE%" goto :not_in_zip
echo setup: setup.bat was started from inside a zip file, so the rest of the bundle is missing.
echo setup: right-click the zip file, choose "Extract All...", then run setup.bat in the extracted folder.
set "EP_RC=5"
goto :finish
:not_in_zip

echo setup: checking the bundle in "%EP_BUNDLE%"
set "EP_BAD=0"
@@CHECK_FILES@@
if "%EP_BAD%"=="0" goto :bundle_ok
echo setup: the bundle is incomplete (%EP_BAD% files missing or damaged). Copy the whole folder again.
set "EP_RC=5"
goto :finish
:bundle_ok

rem The recipe's default may name variables (%LOCALAPPDATA%) and may be relative: to the folder
rem of setup.bat. A PREFIX typed on the command line is relative to the current folder.
set "EP_PREFIX=@@DEFAULT_PREFIX@@"
set "EP_T=%EP_PREFIX%??"
if "%EP_T:~1,1%"==":" goto :default_absolute
if "%EP_T:~0,1%"=="\" goto :default_absolute
set "EP_PREFIX=%EP_BUNDLE%%EP_PREFIX%"
:default_absolute
rem Started by a double-click with no folder given: ask for one, the default shown.
if defined EP_PREFIX_ARG goto :prefix_given
if not defined EP_PAUSE goto :prefix_given
set "EP_ANSWER="
echo.
echo setup: the folder to install "@@NAME@@" into (Enter: the default shown).
set /p "EP_ANSWER=Install into [%EP_PREFIX%]: "
if defined EP_ANSWER set "EP_ANSWER=%EP_ANSWER:"=%"
if defined EP_ANSWER set "EP_PREFIX_ARG=%EP_ANSWER%"
:prefix_given
if defined EP_PREFIX_ARG set "EP_PREFIX=%EP_PREFIX_ARG%"
for %%P in ("%EP_PREFIX%") do set "EP_PREFIX=%%~fP"
if "%EP_PREFIX:~-1%"=="\" set "EP_PREFIX=%EP_PREFIX:~0,-1%"
rem micromamba crashes when run from a network drive (micromamba-releases#104).
if "%EP_PREFIX:~0,2%"=="\\" goto :prefix_network
rem Substrings are taken from a padded copy: wine reads past the end of a string for an
rem offset beyond it. "?" cannot be part of a path.
set "EP_T=%EP_PREFIX%?"
if "%EP_T:~2,1%"=="?" goto :prefix_root
rem micromamba compiles .pyc files and runs post-link scripts through .bat files of its own that
rem run with delayed expansion and CALL: a "!", "%%" or "^" in the prefix breaks them, and
rem micromamba still reports success (a failed compile is a warning; of a post-link script it
rem checks only that it started). Such a prefix is refused before anything is written.
set "EP_T=%EP_PREFIX:!=%"
if not "%EP_T%"=="%EP_PREFIX%" goto :prefix_chars
set "EP_T=%EP_PREFIX:^=%"
if not "%EP_T%"=="%EP_PREFIX%" goto :prefix_chars
set "EP_T="
for /f "delims=%%" %%A in ("x%EP_PREFIX%x") do set "EP_T=%%A"
if not "%EP_T%"=="x%EP_PREFIX%x" goto :prefix_chars
set "EP_WORK=%EP_PREFIX%.envpack-work"

rem An absent or empty prefix is used as is; one left by an unfinished envpack install (it has
rem the marker) is replaced; a conda environment is replaced with /FORCE; anything else stays.
set "EP_REPLACE="
if not exist "%EP_PREFIX%" goto :prefix_ok
rem A folder by its attributes: wine's "if exist FILE\" is true for a file too.
set "EP_ATTR="
for %%P in ("%EP_PREFIX%") do set "EP_ATTR=%%~aP-"
if /i not "%EP_ATTR:~0,1%"=="d" goto :prefix_file
set "EP_LS=%TEMP%\envpack-ls-%RANDOM%.txt"
dir /a /b "%EP_PREFIX%" >"%EP_LS%" 2>nul
set "EP_EMPTY="
for %%F in ("%EP_LS%") do if "%%~zF"=="0" set "EP_EMPTY=1"
del /f /q "%EP_LS%" >nul 2>&1
if defined EP_EMPTY goto :prefix_ok
set "EP_REPLACE=an unfinished install"
if exist "%EP_PREFIX%\.envpack-incomplete" goto :prefix_ok
rem An install stopped while micromamba ran (Ctrl-C, window closed, power cut) leaves the work
rem folder's marker: micromamba replaces a prefix it is given, so a marker inside would be gone.
if exist "%EP_WORK%\.envpack-incomplete" if exist "%EP_PREFIX%\conda-meta\" goto :prefix_ok
set "EP_REPLACE="
if not defined EP_FORCE goto :prefix_taken
set "EP_REPLACE=the environment"
if exist "%EP_PREFIX%\conda-meta\" goto :prefix_ok
echo setup: "%EP_PREFIX%" is not empty and is not a conda environment: not replacing it.
set "EP_RC=6"
goto :finish
:prefix_taken
echo setup: "%EP_PREFIX%" already exists and is not empty.
echo setup: choose another folder, or add /FORCE to replace the conda environment in it.
set "EP_RC=6"
goto :finish
:prefix_file
echo setup: "%EP_PREFIX%" is a file, not a folder.
set "EP_RC=6"
goto :finish
:prefix_network
echo setup: "%EP_PREFIX%" is a network path; install on a local drive (micromamba cannot run from one).
set "EP_RC=6"
goto :finish
:prefix_root
echo setup: "%EP_PREFIX%" is a drive root; name a folder, e.g. "%EP_PREFIX%\envs\@@NAME@@".
set "EP_RC=6"
goto :finish
:prefix_chars
echo setup: "%EP_PREFIX%" contains "!", "%%" or "^": micromamba's own scripts fail on these
echo        characters without saying so. Choose a folder whose path has none of them.
set "EP_RC=6"
goto :finish
:prefix_ok

rem Free space, from the last line of "dir /-c" ("2 Dir(s)  N bytes free", any language), in
rem MB (10^6 bytes) so that cmd's 32-bit arithmetic can compare it.
for %%P in ("%EP_PREFIX%") do set "EP_DRIVE=%%~dP"
set "EP_FREE="
dir /-c "%EP_DRIVE%\" >"%EP_OUT%" 2>nul
for /f "usebackq tokens=3" %%A in ("%EP_OUT%") do set "EP_FREE=%%A"
del /f /q "%EP_OUT%" >nul 2>&1
if defined EP_FREE for /f "delims=0123456789" %%A in ("%EP_FREE%") do set "EP_FREE="
if defined EP_FREE goto :space_known
echo setup: warning: could not read the free space of %EP_DRIVE%; continuing without that check.
goto :space_ok
:space_known
set "EP_FREE_MB=0"
set "EP_T=%EP_FREE%???????"
if not "%EP_T:~6,1%"=="?" set "EP_FREE_MB=%EP_FREE:~0,-6%"
set "EP_T=%EP_FREE_MB%??????????"
if not "%EP_T:~9,1%"=="?" goto :space_ok
@@NEED_SET@@if %EP_FREE_MB% GEQ @@NEED_CHECK@@ goto :space_ok
echo setup: not enough free space on %EP_DRIVE%: %EP_FREE_MB% MB free, about @@NEED_CHECK@@ MB needed.
set "EP_RC=7"
goto :finish
:space_ok

rem Long paths (mamba#991, constructor#1022): the longest file lands in the work folder's package
rem cache (@@WORK_ROOM@@ characters after the prefix) or in the prefix (@@PREFIX_ROOM@@); MAX_PATH
rem leaves 259. The setting is read, explained, and never changed.
set "EP_LONG="
reg query "HKLM\SYSTEM\CurrentControlSet\Control\FileSystem" /v LongPathsEnabled >"%EP_OUT%" 2>nul
for /f "usebackq tokens=1,3" %%A in ("%EP_OUT%") do if /i "%%A"=="LongPathsEnabled" set "EP_LONG=%%B"
del /f /q "%EP_OUT%" >nul 2>&1
set "EP_T=%EP_PREFIX%@@PATH_PAD@@"
if "%EP_T:~@@PATH_LIMIT@@,1%"=="?" goto :paths_ok
if /i "%EP_LONG%"=="0x1" goto :paths_ok
echo setup: under "%EP_PREFIX%" some paths of this environment would be longer than 259 characters,
echo        and long paths are not enabled on this PC. Either install into a shorter folder (at most
echo        @@PATH_LIMIT@@ characters, e.g. setup.bat C:\envs\@@NAME@@), or ask an administrator to enable
echo        "Enable Win32 long paths" (Group Policy: Computer Configuration ^> Administrative
echo        Templates ^> System ^> Filesystem; registry: LongPathsEnabled=1 in
echo        HKLM\SYSTEM\CurrentControlSet\Control\FileSystem). setup.bat never changes it.
set "EP_RC=8"
goto :finish
:paths_ok

echo.
echo   Environment   @@NAME@@ (@@PLATFORM@@, @@PACKAGE_COUNT@@ packages)
echo   Install into  "%EP_PREFIX%"
echo   Disk space    about @@NEED_MB@@ MB
if defined EP_REPLACE echo   Replaces      %EP_REPLACE% already in that folder (deleted first)
echo.
@@CHECK_ONLY@@if defined EP_SILENT goto :confirmed
set "EP_ANSWER="
set /p "EP_ANSWER=Install now? [y/N] "
if defined EP_ANSWER set "EP_ANSWER=%EP_ANSWER:"=%"
if /i "%EP_ANSWER%"=="y" goto :confirmed
if /i "%EP_ANSWER%"=="yes" goto :confirmed
echo setup: cancelled; nothing was changed.
set "EP_RC=2"
goto :finish
:confirmed

rem ---------------------------------------------------------------- the install
if not defined EP_REPLACE goto :old_removed
echo setup: deleting %EP_REPLACE% in "%EP_PREFIX%"
rem Trees deeper than MAX_PATH: cmd.exe is not long-path aware even with LongPathsEnabled=1, but
rem rmdir takes the "\\?\" form, which skips the limit; the plain form follows for the rest.
rmdir /s /q "\\?\%EP_PREFIX%" >nul 2>&1
if exist "%EP_PREFIX%" rmdir /s /q "%EP_PREFIX%" >nul 2>&1
if not exist "%EP_PREFIX%" goto :old_removed
echo setup: could not delete "%EP_PREFIX%" completely; close the programs that use it and run setup.bat again.
set "EP_RC=9"
goto :finish
:old_removed

rem A fresh work folder each run: a package extracted by an earlier run would hide a damaged
rem archive from micromamba's check. Beside the prefix, so that it is on the same drive.
if exist "%EP_WORK%" rmdir /s /q "\\?\%EP_WORK%" >nul 2>&1
if exist "%EP_WORK%" rmdir /s /q "%EP_WORK%" >nul 2>&1
if exist "%EP_WORK%" goto :work_failed
mkdir "%EP_WORK%\pkgs" >nul 2>&1
mkdir "%EP_WORK%\root" >nul 2>&1
mkdir "%EP_WORK%\bin" >nul 2>&1
if not exist "%EP_WORK%\root\" goto :work_failed
if not exist "%EP_WORK%\bin\" goto :work_failed
set "EP_LOG=%EP_WORK%\envpack-install.log"
>"%EP_LOG%" echo envpack @@ENVPACK_VERSION@@ setup.bat: "@@NAME@@" (@@PLATFORM@@, @@PACKAGE_COUNT@@ packages)
>>"%EP_LOG%" echo started: %DATE% %TIME%
>>"%EP_LOG%" echo bundle: "%EP_BUNDLE%"
>>"%EP_LOG%" echo prefix: "%EP_PREFIX%"
>>"%EP_LOG%" echo work folder: "%EP_WORK%"
if not exist "%EP_LOG%" goto :work_failed
rem The marker, before micromamba starts: until the install is complete, an interrupted run
rem (Ctrl-C, a closed window, a power cut) is recognised by it and replaced by the next run.
type nul >"%EP_WORK%\.envpack-incomplete"
if not exist "%EP_WORK%\.envpack-incomplete" goto :work_failed

echo setup: copying @@PACKAGE_COUNT@@ packages into the work folder
set "EP_COPYFAIL="
@@COPY_FILES@@
if not defined EP_COPYFAIL goto :copied
echo setup: could not copy "%EP_COPYFAIL%" into "%EP_WORK%" (disk full, or no permission?).
>>"%EP_LOG%" echo could not copy "%EP_COPYFAIL%" into the work folder
set "EP_RC=9"
goto :finish
:work_failed
echo setup: could not create the work folder "%EP_WORK%" (no permission to write beside the
echo        prefix, or a program still holds a file in an old one?).
set "EP_RC=9"
goto :finish
:copied

rem micromamba sees only the bundle: its own root prefix and package cache, no .condarc, no
rem inherited CONDA_*, MAMBA_* or PYTHON* variable (all cleared inside this setlocal).
@@CLEAR_VARS@@
call :clear_prefixed 2>nul
>>"%EP_LOG%" echo command: @@MICROMAMBA_COMMAND@@
echo setup: installing into "%EP_PREFIX%" (this can take a few minutes; progress every few seconds)
rem For micromamba's run only: its root prefix and package cache in the work folder; every proxy
rem pointed at a closed port, because a package that fails its md5 is otherwise fetched again
rem from its URL despite --offline (measured with 2.8.1); and its home in the work folder, so
rem that its registry of environments (~\.conda\environments.txt) stays out of the profile.
rem micromamba reads MAMBA_ROOT_PREFIX and CONDA_PKGS_DIRS as YAML ("[" + value + "]"): a ",",
rem " #", "[" or "{" in a full path would split, cut or break it. They are therefore given
rem relative to the work folder, micromamba's current folder for the run, which it makes absolute
rem itself (measured with 2.8.1): no character of the user's path passes through YAML.
rem Its temporary .bat files (pyc compilation, post-link scripts) are CALLed with an unquoted
rem %%TMP%%: it points at the work folder's short name when that has no space.
mkdir "%EP_WORK%\home" >nul 2>&1
mkdir "%EP_WORK%\tmp" >nul 2>&1
set "EP_MMTMP="
for %%T in ("%EP_WORK%\tmp") do set "EP_MMTMP=%%~sT"
if not "%EP_MMTMP: =%"=="%EP_MMTMP%" set "EP_MMTMP="
rem Progress lines while it runs: packages unpacked and installed, from a background copy of
rem this script (:hb_start, :heartbeat), which has ended before step.log is read (:hb_wait).
set "EP_HB_SELF=%EP_BUNDLE%@@SELF@@"
set "EP_HB_SAY=setup"
set "EP_HB_MODE=install"
set "EP_HB_TOTAL=@@PACKAGE_COUNT@@"
set "EP_HB_BASE=0"
call :hb_start
setlocal
@@MICROMAMBA_ENV@@
if defined EP_MMTMP set "TMP=%EP_MMTMP%"
if defined EP_MMTMP set "TEMP=%EP_MMTMP%"
pushd "%EP_WORK%"
@@MICROMAMBA_COMMAND@@ >"%EP_WORK%\step.log" 2>&1
set "EP_MMRC=%ERRORLEVEL%"
popd
endlocal & set "EP_MMRC=%EP_MMRC%"
call :hb_wait
type "%EP_WORK%\step.log" >>"%EP_LOG%"
>>"%EP_LOG%" echo micromamba exit code: %EP_MMRC%
rem An antivirus may quarantine micromamba.exe, or refuse to start it, after its copy was checked:
rem cmd.exe then says only that it does not recognize the command (exit code 9009).
if "%EP_MMRC%"=="0" goto :micromamba_started
if "%EP_MMRC%"=="9009" goto :micromamba_not_started
if not exist "%EP_WORK%\bin\micromamba.exe" goto :micromamba_not_started
:micromamba_started
rem From here until success the prefix carries a marker: a rerun replaces it without /FORCE.
if exist "%EP_PREFIX%\" type nul >"%EP_PREFIX%\.envpack-incomplete"
if "%EP_MMRC%"=="0" goto :micromamba_ok
type "%EP_WORK%\step.log"
echo setup: micromamba failed (exit code %EP_MMRC%); its messages are above and in the log.
echo setup: a "Download error" above means a package in the bundle is damaged (this install never downloads): copy the bundle again.
set "EP_RC=10"
goto :finish
:micromamba_ok

rem micromamba 2.x leaves a prefix holding only conda-meta\history when it gives up, so its exit
rem code alone is not trusted: every package must have its conda-meta record.
set "EP_NOTINSTALLED="
@@CHECK_META@@
if not defined EP_NOTINSTALLED goto :meta_ok
echo setup: micromamba exited 0, but "%EP_NOTINSTALLED%" is not installed in "%EP_PREFIX%".
>>"%EP_LOG%" echo not installed: "%EP_NOTINSTALLED%"
set "EP_RC=11"
goto :finish
:meta_ok

rem The environment's own files: micromamba (to manage it later, offline), activation scripts
rem that need no "shell init" and no registry, and a .condarc that keeps conda/mamba offline.
set "EP_WRITEFAIL="
mkdir "%EP_PREFIX%\Scripts" >nul 2>&1
rem The install path, for activate.bat's warning when the folder has been moved.
mkdir "%EP_PREFIX%\etc\envpack" >nul 2>&1
>"%EP_PREFIX%\etc\envpack\install-path.txt" echo "%EP_PREFIX%"
if not exist "%EP_PREFIX%\etc\envpack\install-path.txt" set "EP_WRITEFAIL=etc\envpack\install-path.txt"
rem The environment's lock, for update.bat to find its base.
>"%EP_PREFIX%\etc\envpack\lock-sha256.txt" echo @@LOCK_SHA256@@
if not exist "%EP_PREFIX%\etc\envpack\lock-sha256.txt" set "EP_WRITEFAIL=etc\envpack\lock-sha256.txt"
@@INSTALL_TOOLS@@
rem They are the KEY|text lines at the end of setup.bat (the self-extracting file reads the
rem setup.bat it unpacked). FOR substitutes %%B after cmd.exe has parsed the line, so the text
rem is written exactly as it is; each line goes to the file named by its key, with no IF (wine
rem parses an IF after the substitution, and an "==" in the text breaks it).
mkdir "%EP_WORK%\prefix-files" >nul 2>&1
for /f "usebackq skip=@@TEMPLATE_SKIP@@ tokens=1* delims=|" %%A in ("%EP_BUNDLE%@@SELF@@") do >>"%EP_WORK%\prefix-files\%%A.txt" echo.%%B
@@WRITE_PREFIX_FILES@@
if not defined EP_WRITEFAIL goto :written
echo setup: could not write "%EP_WRITEFAIL%".
>>"%EP_LOG%" echo could not write "%EP_WRITEFAIL%"
set "EP_RC=12"
goto :finish
:written

@@PIP_STEP@@@@POST_INSTALL@@

del /f /q "%EP_PREFIX%\.envpack-incomplete" >nul 2>&1
>>"%EP_LOG%" echo result: installed
echo setup: installed "@@NAME@@" into "%EP_PREFIX%".
echo setup: start it with "%EP_PREFIX%\envpack-shell.bat" (a new cmd.exe with it active), or
echo        CALL "%EP_PREFIX%\activate.bat" in a cmd.exe window where no environment is active.
echo        "%EP_PREFIX%\uninstall.bat" removes it.
set "EP_RC=0"
goto :finish

rem No IF before these ECHOs: wine's cmd.exe ends the script at a ")" in an IF's ECHO text.
:micromamba_not_started
if not exist "%EP_WORK%\bin\micromamba.exe" goto :micromamba_removed
echo setup: "%EP_WORK%\bin\micromamba.exe" could not be started: exit code %EP_MMRC%.
goto :micromamba_blocked
:micromamba_removed
echo setup: "%EP_WORK%\bin\micromamba.exe" was removed from the work folder after it was copied there.
:micromamba_blocked
echo setup: an antivirus may have blocked or quarantined it: allow it, then run setup.bat again.
>>"%EP_LOG%" echo micromamba.exe could not be started from the work folder
set "EP_RC=9"
goto :finish

:post_failed
type "%EP_WORK%\step.log"
echo setup: the post-install script "%EP_SCRIPT%" failed (exit code %EP_PIRC%); its output is above.
>>"%EP_LOG%" echo post-install script failed: "%EP_SCRIPT%"
set "EP_RC=13"
goto :finish

:usage
echo Installs the conda environment "@@NAME@@" (@@PLATFORM@@, @@PACKAGE_COUNT@@ packages) offline, without
echo administrator rights, and without changing the registry, PATH or cmd.exe AutoRun.
echo.
echo   %~nx0 [PREFIX] [/S] [/FORCE]@@SFX_USAGE@@
echo.
echo   PREFIX    the folder to install into; it must be absent or empty.
echo             Default: "@@DEFAULT_PREFIX@@" (a relative one is in the folder of setup.bat)
echo   /S        do not ask for confirmation
echo   /FORCE    replace PREFIX when it already holds a conda environment
@@SFX_USAGE_LINES@@echo   %~nx0 /? shows this help.
echo.
echo Afterwards: PREFIX\envpack-shell.bat opens a cmd.exe with the environment active, and
echo CALL PREFIX\activate.bat activates it in the current window (no other environment active).
echo.
echo Exit codes: 0 installed; 1 bad command line; 2 cancelled; 3 a conda environment is active;
echo 4 this Windows cannot run it (not 64-bit, or x64 on Windows 10 on ARM); 5 bundle incomplete
echo (or started from inside a zip: "Extract All" first); 6 PREFIX not usable (also: a "!", "%%"
echo or "^" in it); 7 not enough disk space; 8 paths too long; 9 work folder failed, or
echo micromamba.exe could not be started there (an antivirus?); 10 micromamba failed;
echo 11 packages missing after install; 12 could not write the activation files;
echo 13 a post-install script failed; 20 no tar.exe and 21 extraction failed (self-extracting
echo file only).
echo Afterwards PREFIX\uninstall.bat removes the environment.
set "EP_RC=0"
goto :finish

rem ---------------------------------------------------------------- the end of every run
:finish
if not defined EP_LOG goto :finish_console
if not "%EP_RC%"=="0" >>"%EP_LOG%" echo result: FAILED, exit code %EP_RC%
>>"%EP_LOG%" echo finished: %DATE% %TIME%
if exist "%EP_PREFIX%\" copy /b /y "%EP_LOG%" "%EP_PREFIX%\envpack-install.log" >nul 2>&1
rmdir /s /q "\\?\%EP_WORK%\pkgs" >nul 2>&1
rmdir /s /q "%EP_WORK%\pkgs" >nul 2>&1
rmdir /s /q "%EP_WORK%\root" >nul 2>&1
rmdir /s /q "%EP_WORK%\bin" >nul 2>&1
rmdir /s /q "%EP_WORK%\home" >nul 2>&1
rmdir /s /q "%EP_WORK%\tmp" >nul 2>&1
del /f /q "%EP_WORK%\step.log" >nul 2>&1
call :hb_clean
if exist "%EP_PREFIX%\envpack-install.log" rmdir /s /q "%EP_WORK%" >nul 2>&1
if "%EP_RC%"=="0" goto :finish_console
if exist "%EP_PREFIX%\envpack-install.log" echo setup: log: "%EP_PREFIX%\envpack-install.log"
if exist "%EP_WORK%\envpack-install.log" echo setup: log: "%EP_WORK%\envpack-install.log"
if exist "%EP_PREFIX%\.envpack-incomplete" echo setup: the unfinished environment in "%EP_PREFIX%" is replaced when you run setup.bat again.
:finish_console
if defined EP_PAUSE pause
if defined EP_CP chcp %EP_CP% >nul
@@RC_OUT@@exit /b %EP_RC%

rem ---------------------------------------------------------------- subroutines (all below
rem their callers: a CALL searches forward first)
:arg
if defined EP_EXPECT (set "EP_EXTRACT_DIR=%EP_ARG%" & set "EP_EXPECT=" & goto :eof)
if /i "%EP_ARG%"=="/S" (set "EP_SILENT=1" & goto :eof)
if /i "%EP_ARG%"=="/FORCE" (set "EP_FORCE=1" & goto :eof)
if "%EP_ARG%"=="/?" (set "EP_HELP=1" & goto :eof)
if /i "%EP_ARG%"=="/H" (set "EP_HELP=1" & goto :eof)
if /i "%EP_ARG%"=="/HELP" (set "EP_HELP=1" & goto :eof)
if /i "%EP_ARG%"=="--help" (set "EP_HELP=1" & goto :eof)
@@SFX_ARGS@@
if "%EP_ARG:~0,1%"=="/" (set "EP_BADARG=%EP_ARG%" & goto :eof)
if defined EP_PREFIX_ARG (set "EP_BADARG=%EP_ARG%" & goto :eof)
set "EP_PREFIX_ARG=%EP_ARG%"
goto :eof

:clear_prefixed
rem Every CONDA_* and MAMBA_* variable, whatever its name ("set X" lists those starting with X;
rem its complaint when there are none goes to the caller's 2>nul).
>"%EP_WORK%\vars.txt" set CONDA_
>>"%EP_WORK%\vars.txt" set MAMBA_
for /f "usebackq delims==" %%V in ("%EP_WORK%\vars.txt") do set "%%V="
del /f /q "%EP_WORK%\vars.txt" >nul 2>&1
goto :eof

:badfile
set /a EP_BAD+=1
if exist "%EP_BUNDLE%%EP_FILE%" echo setup:   wrong size: "%EP_FILE%"
if not exist "%EP_BUNDLE%%EP_FILE%" echo setup:   missing: "%EP_FILE%"
goto :eof

rem A post-install script runs in the activated environment, in its own setlocal, with the prefix
rem as working folder. It is CALLed by a relative path: CALL parses its line a second time,
rem which would double a "^" or expand a "%" of an absolute path.
:postinstall
set "EP_PIRC=1"
mkdir "%EP_PREFIX%\etc\envpack\post-install" >nul 2>&1
copy /b /y "%EP_BUNDLE%@@POST_DIR@@\%EP_SCRIPT%" "%EP_PREFIX%\etc\envpack\post-install\" >nul 2>&1
if not exist "%EP_PREFIX%\etc\envpack\post-install\%EP_SCRIPT%" goto :eof
echo setup: running the post-install script "%EP_SCRIPT%"
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
rem Nothing after this line is run.
