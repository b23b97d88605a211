rem ---------------------------------------------------------------- self-extraction
rem This file is this script followed by a zip whose offsets count from the start of the file.
rem Windows' own tar.exe (libarchive's bsdtar, Windows 10 1803 and later) finds the zip's central
rem directory from the end of the FILE, so it is given the file, never stdin.
rem The path of this file is taken now: for a file started by a relative name, cmd.exe resolves
rem it against the current folder each time, and the extraction runs from another one.
set "EP_SFX=%~f0"
for %%S in ("%EP_SFX%") do set "EP_SFX_DIR=%%~dpS"
for %%S in ("%EP_SFX%") do set "EP_SFX_NAME=%%~nxS"
set "EP_TAR=%SystemRoot%\System32\tar.exe"
if not exist "%EP_TAR%" set "EP_TAR=tar.exe"
"%EP_TAR%" --version >nul 2>&1
if not errorlevel 1 goto :tar_ok
echo setup: this file unpacks itself with tar.exe, which comes with Windows 10 (1803) and later,
echo        but there is none here. Instead: copy "%~nx0" to a name ending in .zip, extract it
echo        with Explorer or 7-Zip, and run setup.bat in the extracted "@@NAME@@" folder.
set "EP_RC=20"
goto :finish
:tar_ok
set "EP_DEST=%EP_SFX_DIR%"
if defined EP_EXTRACT_DIR goto :dest_chosen
rem Beside this file by default; where that cannot be written (a DVD, a write-protected stick, a
rem read-only share, a file in the way), under %%LOCALAPPDATA%% instead: a double-click cannot
rem pass /EXTRACT. A file is told from a folder by its attributes (wine's "if exist" cannot).
set "EP_T="
if not exist "%EP_SFX_DIR%@@NAME@@\" mkdir "%EP_SFX_DIR%@@NAME@@" >nul 2>&1
type nul 2>nul >"%EP_SFX_DIR%@@NAME@@\.envpack-probe"
for %%P in ("%EP_SFX_DIR%@@NAME@@\.envpack-probe") do set "EP_T=%%~aP"
del /f /q "%EP_SFX_DIR%@@NAME@@\.envpack-probe" >nul 2>&1
rmdir "%EP_SFX_DIR%@@NAME@@" >nul 2>&1
if defined EP_T if "%EP_T:~0,1%"=="-" goto :dest_chosen
set "EP_EXTRACT_DIR=%LOCALAPPDATA%\envpack-bundles"
echo setup: cannot write beside "%~nx0"; extracting into "%EP_EXTRACT_DIR%" instead.
:dest_chosen
if defined EP_EXTRACT_DIR set "EP_DEST=%EP_EXTRACT_DIR%"
for %%D in ("%EP_DEST%") do set "EP_DEST=%%~fD"
if "%EP_DEST:~-1%"=="\" set "EP_DEST=%EP_DEST:~0,-1%"
if not exist "%EP_DEST%\" mkdir "%EP_DEST%" >nul 2>&1
if not exist "%EP_DEST%\" goto :extract_failed
echo setup: extracting "%~nx0" into "%EP_DEST%\@@NAME@@"
rem Windows' tar.exe takes its arguments in the ANSI code page (a narrow main(), libarchive#2092):
rem a path with a letter outside it (a Chinese user name on an English Windows) fails to open.
rem By default it therefore runs in this file's folder, given the file by its name alone. With
rem /EXTRACT it runs in that folder and is given this file's full path (the user chose the place).
if defined EP_EXTRACT_DIR goto :extract_elsewhere
pushd "%EP_SFX_DIR%"
"%EP_TAR%" -xf "%EP_SFX_NAME%"
set "EP_TARRC=%ERRORLEVEL%"
goto :extract_done
:extract_elsewhere
pushd "%EP_DEST%"
"%EP_TAR%" -xf "%EP_SFX%"
set "EP_TARRC=%ERRORLEVEL%"
:extract_done
popd
if not "%EP_TARRC%"=="0" goto :extract_failed
if exist "%EP_DEST%\@@NAME@@\setup.bat" goto :extracted
:extract_failed
echo setup: could not extract "%~nx0" into "%EP_DEST%" (no permission, or disk full?).
echo setup: choose another folder with /EXTRACT FOLDER, or copy "%~nx0" to a name ending in .zip
echo        and extract it with Explorer or 7-Zip, then run setup.bat in the "@@NAME@@" folder.
set "EP_RC=21"
goto :finish
:extracted
set "EP_BUNDLE=%EP_DEST%\@@NAME@@\"
