@echo off
rem envpack self-extracting installer for "@@NAME@@": a batch header followed by a zip.
setlocal EnableExtensions DisableDelayedExpansion
set "DEST=%~dp0"
where tar >nul 2>nul
if errorlevel 1 (
  echo This installer needs tar.exe, built into Windows 10 1803 and later.
  exit /b 20
)
pushd "%DEST%"
tar -xf "%~f0"
if errorlevel 1 (
  popd
  echo Extraction failed.
  exit /b 21
)
popd
call "%DEST%@@NAME@@\setup.bat" %*
exit /b %ERRORLEVEL%
