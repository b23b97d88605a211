@echo off
rem Removes the conda environment "@@NAME@@": the folder of this file, and nothing else (setup.bat
rem wrote nothing outside it: no registry, PATH, AutoRun or Start-menu entry). Written by
rem envpack's setup.bat.
rem
rem   uninstall.bat [/S]      /S: do not ask for confirmation
rem
rem Exit codes: 0 removed; 1 bad command line; 2 cancelled; 3 the environment is active in this
rem window; 9 some files could not be removed (a program still uses them).
rem
rem A batch file cannot remove the folder it runs from while cmd.exe still reads it: this one
rem runs a copy of itself from %TEMP%, which removes the environment and then itself.
if defined ENVPACK_UNINSTALL_PREFIX goto :copy_runs
setlocal EnableExtensions DisableDelayedExpansion
set "EP_COPY=%TEMP%\envpack-uninstall-%RANDOM%%RANDOM%.bat"
copy /y "%~f0" "%EP_COPY%" >nul 2>&1
if not exist "%EP_COPY%" echo uninstall: cannot copy itself to "%TEMP%"; delete the folder "%~dp0" instead.
if not exist "%EP_COPY%" exit /b 9
endlocal & set "ENVPACK_UNINSTALL_PREFIX=%~dp0" & "%EP_COPY%" %*

:copy_runs
setlocal EnableExtensions DisableDelayedExpansion
set "EP_PREFIX=%ENVPACK_UNINSTALL_PREFIX%"
set "EP_PREFIX=%EP_PREFIX:~0,-1%"
rem Its lines are read as UTF-8 (the name may not be ASCII); the code page is given back at the end.
set "EP_CP="
set "EP_OUT=%TEMP%\envpack-uninstall-%RANDOM%%RANDOM%.txt"
chcp >"%EP_OUT%" 2>nul
if exist "%EP_OUT%" for /f "usebackq tokens=2 delims=:" %%C in ("%EP_OUT%") do set "EP_CP=%%C"
del /f /q "%EP_OUT%" >nul 2>&1
if defined EP_CP set "EP_CP=%EP_CP: =%"
if defined EP_CP set "EP_CP=%EP_CP:.=%"
if defined EP_CP for /f "delims=0123456789" %%C in ("%EP_CP%") do set "EP_CP="
if "%EP_CP%"=="0" set "EP_CP="
if defined EP_CP chcp 65001 >nul
title envpack uninstall: @@NAME@@
set "EP_RC=1"
set "EP_SILENT="
set "EP_PAUSE="
set "EP_ARG=%~1"
if /i "%EP_ARG%"=="/S" set "EP_SILENT=1"
if /i "%EP_ARG%"=="/S" set "EP_ARG="
if defined EP_ARG goto :usage
rem Started by a double-click, the window waits for a key at the end (as setup.bat does).
set "EP_T=%CMDCMDLINE%"
if defined EP_T set "EP_T=%EP_T:"=%"
if defined EP_T if /i not "%EP_T: /C =%"=="%EP_T%" if not defined EP_SILENT set "EP_PAUSE=1"
if not defined CONDA_PREFIX goto :not_active
if /i not "%CONDA_PREFIX%"=="%EP_PREFIX%" goto :not_active
echo uninstall: "@@NAME@@" is active in this window; close it, and run uninstall.bat from a new one.
set "EP_RC=3"
goto :end
:not_active
if exist "%EP_PREFIX%\conda-meta\" goto :is_env
echo uninstall: "%EP_PREFIX%" holds no conda environment; nothing was removed.
set "EP_RC=9"
goto :end
:is_env
if defined EP_SILENT goto :confirmed
set "EP_ANSWER="
set /p "EP_ANSWER=Remove "@@NAME@@" and everything in "%EP_PREFIX%"? [y/N] "
if defined EP_ANSWER set "EP_ANSWER=%EP_ANSWER:"=%"
if /i "%EP_ANSWER%"=="y" goto :confirmed
if /i "%EP_ANSWER%"=="yes" goto :confirmed
echo uninstall: cancelled; nothing was removed.
set "EP_RC=2"
goto :end
:confirmed
rem The folder is left first (a current folder cannot be removed). The "\\?\" form lets rmdir
rem pass MAX_PATH in deep trees; the plain form follows for anything it leaves.
cd /d "%EP_PREFIX%\.."
rmdir /s /q "\\?\%EP_PREFIX%" >nul 2>&1
if exist "%EP_PREFIX%\" rmdir /s /q "%EP_PREFIX%" >nul 2>&1
if not exist "%EP_PREFIX%\" goto :removed
echo uninstall: could not remove everything in "%EP_PREFIX%"; close the programs that use it and delete the folder.
set "EP_RC=9"
goto :end
:removed
echo uninstall: removed "@@NAME@@" from "%EP_PREFIX%".
set "EP_RC=0"
goto :end
:usage
echo Removes the conda environment "@@NAME@@" in "%EP_PREFIX%".
echo   uninstall.bat [/S]     /S: do not ask for confirmation
set "EP_RC=1"
:end
if defined EP_PAUSE pause
if defined EP_CP chcp %EP_CP% >nul
rem The copy in %TEMP% removes itself: the block is read whole before the file goes.
(
  endlocal
  set "ENVPACK_UNINSTALL_PREFIX="
  del /f /q "%~f0" >nul 2>&1
  exit /b %EP_RC%
)
