@echo off
rem envpack @@ENVPACK_VERSION@@: offline installer for the "@@NAME@@" environment (@@PLATFORM@@).
rem First version: installs into PREFIX (default @@DEFAULT_PREFIX@@) from this folder, offline.
setlocal EnableExtensions DisableDelayedExpansion
set "BUNDLE=%~dp0"
set "PREFIX=%~1"
if "%PREFIX%"=="" set "PREFIX=@@DEFAULT_PREFIX@@"
set "MISSING="
@@CHECK_FILES@@
if defined MISSING (
  echo setup: the bundle is incomplete: "%MISSING%" is missing. Copy the whole folder again.
  exit /b 3
)
set "WORK=%PREFIX%.envpack-work"
if exist "%WORK%" rmdir /s /q "%WORK%"
mkdir "%WORK%\pkgs"
mkdir "%WORK%\root"
copy /b /y "%BUNDLE%channel\@@PLATFORM@@\*" "%WORK%\pkgs\" >nul
copy /b /y "%BUNDLE%channel\noarch\*" "%WORK%\pkgs\" >nul
set "MAMBA_ROOT_PREFIX=%WORK%\root"
set "CONDA_PKGS_DIRS=%WORK%\pkgs"
"%BUNDLE%micromamba.exe" create -p "%PREFIX%" --yes --offline --no-rc --override-channels --platform @@PLATFORM@@ @@NO_SHORTCUTS@@ -f "%BUNDLE%@@EXPLICIT_FILE@@"
if errorlevel 1 (
  echo setup: micromamba failed; see the messages above.
  exit /b 10
)
if not exist "%PREFIX%\Scripts" mkdir "%PREFIX%\Scripts"
copy /b /y "%BUNDLE%micromamba.exe" "%PREFIX%\Scripts\" >nul
rmdir /s /q "%WORK%"
echo setup: installed "@@NAME@@" into "%PREFIX%".
exit /b 0
