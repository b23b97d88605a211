@echo off
rem envpack @@ENVPACK_VERSION@@: the offline installer of the conda environments @@NAMES@@ (@@PLATFORM@@).
rem
rem   setup.bat [ENV...] [/S] [/FORCE] [/?]
rem
rem Installs every environment of this bundle, or those named, each into its own prefix, with no
rem network, no administrator rights, and without writing the registry, PATH or AutoRun. Each
rem environment has its own installer, envs\<env>\setup.bat (the packages and micromamba are
rem shared, at the top of the bundle); this script runs them, first all with /CHECK (every check
rem that changes nothing, the free space counting all chosen environments), then asks once, then
rem installs them one after the other and stops at the first failure, with its exit code.
rem Exit codes: those of setup.bat (see /?); 1 also for an ENV this bundle does not have.
rem
rem Same rules as setup.bat: plain cmd.exe, no delayed expansion, no backward GOTO, no "&&" or
rem "||", no FOR /F over a command. A CALLed script's exit code does not survive CALL under
rem wine: each environment's setup.bat hands its code back in EP_RC.
setlocal EnableExtensions DisableDelayedExpansion
set "DIRCMD="
title envpack setup: @@NAME@@
set "EM_RC=1"
set "EM_SILENT="
set "EM_FORCE="
set "EM_HELP="
set "EM_BADARG="
set "EM_UNKNOWN="
set "EM_ANY="
set "EM_ALL="
set "EM_NAME="
set "EP_MULTI_OTHERS_MB="
@@ENV_INIT@@
set "EM_ARG=%~1"
if defined EM_ARG call :arg
set "EM_ARG=%~2"
if defined EM_ARG call :arg
set "EM_ARG=%~3"
if defined EM_ARG call :arg
set "EM_ARG=%~4"
if defined EM_ARG call :arg
set "EM_ARG=%~5"
if defined EM_ARG call :arg
set "EM_ARG=%~6"
if defined EM_ARG call :arg
set "EM_ARG=%~7"
if defined EM_ARG call :arg
set "EM_ARG=%~8"
if defined EM_ARG call :arg
set "EM_ARG=%~9"
if defined EM_ARG call :arg
if defined EM_HELP goto :usage
if not defined EM_BADARG goto :args_known
echo setup: unexpected argument: "%EM_BADARG%"
echo setup: run "%~nx0 /?" to see the usage.
goto :finish
:args_known
if not defined EM_UNKNOWN goto :args_ok
echo setup: this bundle has no environment "%EM_UNKNOWN%"; it has: @@NAME_LIST@@.
echo setup: run "%~nx0 /?" to see the usage.
goto :finish
:args_ok
rem No ENV named: all of them.
if not defined EM_ANY set "EM_ALL=1"
@@ENV_ALL@@

rem Started by a double-click, the window would close before the result could be read.
set "EM_PAUSE="
if defined EM_SILENT goto :pause_known
set "EM_T=%CMDCMDLINE%"
if not defined EM_T goto :pause_known
set "EM_T=%EM_T:"=%"
if /i not "%EM_T: /C =%"=="%EM_T%" set "EM_PAUSE=1"
:pause_known

rem Opened from inside a zip, only this file was copied out: the rest of the bundle is missing.
@@ENV_PRESENT@@

rem The free space all chosen environments need together (MB), for each one's check.
set "EM_TOTAL=0"
@@ENV_TOTAL@@

rem ---------------------------------------------------------------- the check pass
@@CHECK_CALLS@@

if defined EM_SILENT goto :confirmed
set "EM_ANSWER="
set /p "EM_ANSWER=Install these environments now? [y/N] "
if defined EM_ANSWER set "EM_ANSWER=%EM_ANSWER:"=%"
if /i "%EM_ANSWER%"=="y" goto :confirmed
if /i "%EM_ANSWER%"=="yes" goto :confirmed
echo setup: cancelled; nothing was changed.
set "EM_RC=2"
goto :finish
:confirmed

rem ---------------------------------------------------------------- the install pass
set "EP_MULTI_OTHERS_MB="
@@INSTALL_CALLS@@
echo setup: installed @@NAMES_DONE@@
set "EM_RC=0"
goto :finish

:missing
echo setup: "%EM_MISSING%" is missing: the bundle is incomplete (or setup.bat was started from
echo        inside a zip file: "Extract All..." first, then run setup.bat in the extracted folder).
set "EM_RC=5"
goto :finish

:failed
if not defined EP_RC set "EP_RC=1"
set "EM_RC=%EP_RC%"
if "%EM_RC%"=="0" set "EM_RC=1"
echo setup: stopped at the environment "%EM_NAME%" (exit code %EM_RC%).
goto :finish

:usage
echo Installs the conda environments of this bundle (@@PLATFORM@@) offline, each into its own
echo folder, without administrator rights and without changing the registry, PATH or AutoRun.
echo.
echo   %~nx0 [ENV...] [/S] [/FORCE]
echo.
echo   ENV       the environments to install (default: all of them):
@@USAGE_ENVS@@
echo   /S        do not ask for confirmation
echo   /FORCE    replace a prefix that already holds a conda environment
echo   %~nx0 /? shows this help; envs\ENV\setup.bat /? the options of one environment
echo             (it installs that one alone, into a folder you may name).
echo.
echo Exit codes: those of envs\ENV\setup.bat (0 installed; 1 bad command line, also an ENV
echo this bundle does not have; 2 cancelled; 3 a conda environment is active; 4 this Windows
echo cannot run it; 5 bundle incomplete; 6 prefix not usable; 7 not enough disk space; 8 paths
echo too long; 9 work folder failed, or micromamba.exe could not be started (an antivirus?);
echo 10 micromamba failed; 11 packages missing after install; 12 could not write the activation
echo files; 13 a post-install script failed), of the first environment that failed; the ones
echo before it stay installed.
set "EM_RC=0"
goto :finish

:finish
if defined EM_PAUSE pause
exit /b %EM_RC%

rem ---------------------------------------------------------------- subroutines
:arg
if /i "%EM_ARG%"=="/S" (set "EM_SILENT=1" & goto :eof)
if /i "%EM_ARG%"=="/FORCE" (set "EM_FORCE=/FORCE" & goto :eof)
if "%EM_ARG%"=="/?" (set "EM_HELP=1" & goto :eof)
if /i "%EM_ARG%"=="/H" (set "EM_HELP=1" & goto :eof)
if /i "%EM_ARG%"=="/HELP" (set "EM_HELP=1" & goto :eof)
if /i "%EM_ARG%"=="--help" (set "EM_HELP=1" & goto :eof)
if "%EM_ARG:~0,1%"=="/" (set "EM_BADARG=%EM_ARG%" & goto :eof)
set "EM_ANY=1"
@@ENV_ARGS@@
if not defined EM_UNKNOWN set "EM_UNKNOWN=%EM_ARG%"
goto :eof
