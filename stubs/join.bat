@echo off
rem envpack join script: checks every part of a split bundle, then joins them with copy /b.
rem Plain cmd.exe only: no findstr, certutil, where or powershell, no && or ||.
rem Sizes are compared as strings: cmd's numeric IF is 32-bit and parts may exceed 2 GiB.
setlocal EnableExtensions DisableDelayedExpansion
set "TARGET=@@TARGET@@"
set "TOP=@@TOP@@"
set "PARTS=@@PARTS@@"
set "PART_SIZE=@@PART_SIZE@@"
set "LAST_SIZE=@@LAST_SIZE@@"
set "TOTAL_SIZE=@@TOTAL_SIZE@@"
set "LAST_NUM=@@LAST_NUM@@"
set "HERE=%~dp0"
set "DEST=%HERE%"
set "MISSING="
set "BADPART="
set "COPYFAIL="
set "RC=0"
rem Started by a double-click (Explorer runs cmd.exe /c "join.bat"), the window would close
rem before its messages could be read: it then waits for a key at the end.
set "PAUSE_AT_END="
set "T=%CMDCMDLINE%"
if defined T set "T=%T:"=%"
if defined T if /i not "%T: /C =%"=="%T%" set "PAUSE_AT_END=1"

rem Every part is checked before anything is written, so a failure leaves no file behind.
for /l %%i in (1,1,%PARTS%) do call :check %%i
if defined MISSING goto missing
if defined BADPART goto badsize

rem The joined file goes beside the parts; where it cannot be written there (a DVD, a protected
rem stick or share, a folder in the way), join.bat asks for another folder. A file is told from a
rem folder by its attributes: wine's "if exist" does not.
call :writable
if defined CAN_WRITE goto dest_ok
echo join: cannot write in "%HERE%" (read-only?).
set "ASKED="
set /p "ASKED=join: type a folder to write "%TARGET%" into (Enter cancels): "
if defined ASKED set "ASKED=%ASKED:"=%"
if not defined ASKED goto readonly
for %%D in ("%ASKED%\.") do set "DEST=%%~fD\"
if not exist "%DEST%" mkdir "%DEST%" >nul 2>&1
call :writable
if not defined CAN_WRITE goto readonly
:dest_ok
set "OUT=%DEST%%TARGET%"
set "JOINING=%DEST%%TARGET%.joining"

echo join: joining %PARTS% parts into "%TARGET%" ...
if exist "%JOINING%" del /f /q "%JOINING%"
copy /b "%HERE%%TARGET%.001" "%JOINING%" >nul
if errorlevel 1 set "COPYFAIL=%TARGET%.001"
rem copy /b A + B A appends B to A in place (the idiom behind "copy /b file +,,").
for /l %%i in (2,1,%PARTS%) do call :append %%i
if defined COPYFAIL goto copyfail
set "GOT="
for %%F in ("%JOINING%") do set "GOT=%%~zF"
if not "%GOT%"=="%TOTAL_SIZE%" goto joinsize
move /y "%JOINING%" "%OUT%" >nul
if errorlevel 1 goto movefail
echo join: "%TARGET%" is complete (%TOTAL_SIZE% bytes), in "%DEST%".
if /i not "%DEST%"=="%HERE%" cd /d "%DEST%"
@@NEXT@@
goto end

:writable
set "CAN_WRITE="
set "ATTR="
type nul 2>nul >"%DEST%%TARGET%.joining"
for %%F in ("%DEST%%TARGET%.joining") do set "ATTR=%%~aF"
if defined ATTR if "%ATTR:~0,1%"=="-" set "CAN_WRITE=1"
goto :eof

:check
set "NUM=00%1"
set "NUM=%NUM:~-3%"
set "PART=%TARGET%.%NUM%"
if not exist "%HERE%%PART%" goto check_missing
set "WANT=%PART_SIZE%"
if "%1"=="%PARTS%" set "WANT=%LAST_SIZE%"
set "GOT="
for %%F in ("%HERE%%PART%") do set "GOT=%%~zF"
if "%GOT%"=="%WANT%" goto :eof
if defined BADPART goto :eof
set "BADPART=%PART%"
set "BADGOT=%GOT%"
set "BADWANT=%WANT%"
goto :eof
:check_missing
if not defined MISSING set "MISSING=%PART%"
goto :eof

:append
if defined COPYFAIL goto :eof
set "NUM=00%1"
set "NUM=%NUM:~-3%"
copy /b "%JOINING%" + "%HERE%%TARGET%.%NUM%" "%JOINING%" >nul
if errorlevel 1 set "COPYFAIL=%TARGET%.%NUM%"
goto :eof

:missing
echo join: part "%MISSING%" is missing.
echo join: copy all %PARTS% parts ("%TARGET%.001" to "%TARGET%.%LAST_NUM%") into "%HERE%" and run join.bat again.
set "RC=2"
goto end

:badsize
echo join: part "%BADPART%" has %BADGOT% bytes but should have %BADWANT%: it is truncated or damaged.
echo join: copy that part again (check that the copy finished) and run join.bat again.
set "RC=3"
goto end

:copyfail
if exist "%JOINING%" del /f /q "%JOINING%"
echo join: could not write "%TARGET%" while adding "%COPYFAIL%".
echo join: the joined file needs %TOTAL_SIZE% bytes of free space on a disk that holds files that large (NTFS, not FAT32).
set "RC=5"
goto end

:joinsize
if exist "%JOINING%" del /f /q "%JOINING%"
echo join: the joined file has %GOT% bytes but should have %TOTAL_SIZE%; nothing was kept.
echo join: check the free space (NTFS, not FAT32, for files over 4 GiB) and run join.bat again.
set "RC=4"
goto end

:movefail
if exist "%JOINING%" del /f /q "%JOINING%"
echo join: could not rename the joined file to "%TARGET%"; is it open in another program?
set "RC=6"
goto end

:readonly
echo join: nothing was written. Copy the parts to a folder you can write to, or give one here.
set "RC=5"

:end
if defined PAUSE_AT_END pause
exit /b %RC%
