rem ---------------------------------------------------------------- progress while micromamba runs
rem micromamba's output goes to step.log and it says nothing before it ends: on a big environment
rem that was minutes of silence. :hb_start starts this same script again in the background with
rem EP_HEARTBEAT set (its first lines send it to :heartbeat); that copy prints a line every few
rem seconds until micromamba has ended. micromamba itself stays in the foreground, so that Ctrl-C
rem and a closed window stop it exactly as before, and its exit code is read as before.
rem
rem The background copy is started by START /B, in the same window, as "%%ComSpec%%" /d (no
rem AutoRun) /v:off (a "!" in the path stays); START /B has Windows ignore Ctrl-C in it, so after
rem Ctrl-C only the foreground script asks "Terminate batch job (Y/N)?". The script's own path is
rem not on START's line: a "&" in it would split that line, and wine's start.exe drops the quotes
rem of "/c ""path""". The child expands %%EP_HB_Q%%, the path with its quotes, itself.
rem Its input is nul: Ctrl-Break (which START /B does not shield) must not leave it waiting at
rem "Terminate batch job (Y/N)?" for the keys the user types next.
rem
rem It ends when micromamba has: the foreground writes mm.done once micromamba returns, and
rem step.log, which cmd.exe holds open for writing without sharing while micromamba runs (and
rem micromamba with it), opens for appending again as soon as micromamba is gone. The second
rem check is what ends it after Ctrl-C and "Y" (no mm.done is ever written then). Its last act is
rem hb.end, which :hb_wait waits for before anything reads step.log, so the two never meet on it.
rem
rem A line: the seconds since micromamba started, the packages unpacked into the work folder's
rem package cache (a folder holding info\, at most 12 levels down: micromamba 2.6 and later
rem extract to pkgs\<scheme>\<host>\<channel path>\<subdir>\<package>, older ones to
rem pkgs\<package>; the walk stops at each package and never enters it) and the records in
rem conda-meta (minus EP_HB_BASE, those there before; for a removal, the records gone). It is
rem printed when the counts have changed (at most one line per 5 s), otherwise every 30 s. The
rem seconds come from %%TIME%% (H:MM:SS.cc on Windows, with the locale's separators); where that
rem cannot be read (wine gives "11:48 AM") from the number of 2-second waits.
rem The loops are FOR /L with IF, never a backward GOTO (see the top of this script).
:heartbeat
set "EP_HEARTBEAT="
rem A variable the user named TIME would hide the clock: %%TIME%% is dynamic only when unset.
set "TIME="
if not defined EP_WORK exit /b 0
set "EP_HB_STOP="
set "EP_HB_TICK=0"
set "EP_HB_SHOWN=0"
set "EP_HB_SEEN=0 0"
call :hb_clock
set "EP_HB_T0=%EP_HB_NOW%"
for /l %%A in (1,1,1000) do if not defined EP_HB_STOP for /l %%B in (1,1,100) do if not defined EP_HB_STOP call :hb_tick
type nul >"%EP_WORK%\hb.end"
exit /b 0

:hb_tick
"%SystemRoot%\System32\ping.exe" -n 3 127.0.0.1 >nul 2>&1
set /a "EP_HB_TICK+=1"
if exist "%EP_WORK%\mm.done" goto :hb_stop
if not exist "%EP_WORK%\" goto :hb_stop
if not exist "%EP_WORK%\step.log" goto :hb_count
call :hb_probe 2>nul
if exist "%EP_WORK%\hb.free" goto :hb_stop
:hb_count
set "EP_HB_U=0"
if exist "%EP_WORK%\pkgs\" call :hb_d1 "%EP_WORK%\pkgs"
set "EP_HB_L=0"
dir /b /a-d "%EP_PREFIX%\conda-meta\*.json" >"%EP_WORK%\hb-meta.txt" 2>nul
for /f "usebackq delims=" %%F in ("%EP_WORK%\hb-meta.txt") do set /a "EP_HB_L+=1"
if "%EP_HB_MODE%"=="remove" set /a "EP_HB_L=EP_HB_BASE-EP_HB_L"
if not "%EP_HB_MODE%"=="remove" set /a "EP_HB_L-=EP_HB_BASE"
call :hb_clock
set "EP_HB_S="
if defined EP_HB_NOW if defined EP_HB_T0 set /a "EP_HB_S=(EP_HB_NOW-EP_HB_T0+86400) %% 86400"
if not defined EP_HB_S set /a "EP_HB_S=EP_HB_TICK*2"
set /a "EP_HB_AGE=EP_HB_S-EP_HB_SHOWN"
if "%EP_HB_U% %EP_HB_L%"=="%EP_HB_SEEN%" goto :hb_same
if %EP_HB_AGE% LSS 5 goto :eof
goto :hb_show
:hb_same
if %EP_HB_AGE% LSS 30 goto :eof
:hb_show
set "EP_HB_SEEN=%EP_HB_U% %EP_HB_L%"
set "EP_HB_SHOWN=%EP_HB_S%"
if "%EP_HB_MODE%"=="remove" echo %EP_HB_SAY%: %EP_HB_S% s: %EP_HB_L% of %EP_HB_TOTAL% packages removed
if not "%EP_HB_MODE%"=="remove" echo %EP_HB_SAY%: %EP_HB_S% s: %EP_HB_U% of %EP_HB_TOTAL% packages unpacked, %EP_HB_L% of %EP_HB_TOTAL% installed
goto :eof

rem Opening step.log for appending (nothing is written) succeeds only when nobody holds it.
:hb_probe
call :hb_free >>"%EP_WORK%\step.log"
goto :eof
:hb_free
type nul >"%EP_WORK%\hb.free"
goto :eof
:hb_stop
set "EP_HB_STOP=1"
goto :eof

rem Seconds since midnight from %%TIME%%, or nothing. The "100" in front keeps SET /A from reading
rem "08" as octal.
:hb_clock
set "EP_HB_NOW="
set "EP_HB_CLK="
set "EP_HB_T=%TIME: =0%"
for /f "tokens=1-3 delims=:.," %%A in ("%EP_HB_T%") do set "EP_HB_CLK=%%A %%B %%C"
if not defined EP_HB_CLK goto :eof
for /f "delims=0123456789 " %%A in ("%EP_HB_CLK%") do set "EP_HB_CLK="
if not defined EP_HB_CLK goto :eof
for /f "tokens=1-3" %%A in ("%EP_HB_CLK%") do if not "%%C"=="" set /a "EP_HB_NOW=(100%%A %% 100)*3600+(100%%B %% 100)*60+(100%%C %% 100)"
goto :eof

rem One level of the package cache each: a folder with info\ is a package; any other is looked
rem into. Folders are listed by DIR into a file, not by FOR /D: wine's FOR matches no quoted
rem wildcard, and a PUSHD into the cache would hold a folder micromamba may be writing.
:hb_d1
if exist "%~1\info\" goto :hb_pkg
dir /b /ad "%~1" >"%EP_WORK%\hb-ls1.txt" 2>nul
for /f "usebackq delims=" %%D in ("%EP_WORK%\hb-ls1.txt") do call :hb_d2 "%~1\%%D"
goto :eof
:hb_d2
if exist "%~1\info\" goto :hb_pkg
dir /b /ad "%~1" >"%EP_WORK%\hb-ls2.txt" 2>nul
for /f "usebackq delims=" %%D in ("%EP_WORK%\hb-ls2.txt") do call :hb_d3 "%~1\%%D"
goto :eof
:hb_d3
if exist "%~1\info\" goto :hb_pkg
dir /b /ad "%~1" >"%EP_WORK%\hb-ls3.txt" 2>nul
for /f "usebackq delims=" %%D in ("%EP_WORK%\hb-ls3.txt") do call :hb_d4 "%~1\%%D"
goto :eof
:hb_d4
if exist "%~1\info\" goto :hb_pkg
dir /b /ad "%~1" >"%EP_WORK%\hb-ls4.txt" 2>nul
for /f "usebackq delims=" %%D in ("%EP_WORK%\hb-ls4.txt") do call :hb_d5 "%~1\%%D"
goto :eof
:hb_d5
if exist "%~1\info\" goto :hb_pkg
dir /b /ad "%~1" >"%EP_WORK%\hb-ls5.txt" 2>nul
for /f "usebackq delims=" %%D in ("%EP_WORK%\hb-ls5.txt") do call :hb_d6 "%~1\%%D"
goto :eof
:hb_d6
if exist "%~1\info\" goto :hb_pkg
dir /b /ad "%~1" >"%EP_WORK%\hb-ls6.txt" 2>nul
for /f "usebackq delims=" %%D in ("%EP_WORK%\hb-ls6.txt") do call :hb_d7 "%~1\%%D"
goto :eof
:hb_d7
if exist "%~1\info\" goto :hb_pkg
dir /b /ad "%~1" >"%EP_WORK%\hb-ls7.txt" 2>nul
for /f "usebackq delims=" %%D in ("%EP_WORK%\hb-ls7.txt") do call :hb_d8 "%~1\%%D"
goto :eof
:hb_d8
if exist "%~1\info\" goto :hb_pkg
dir /b /ad "%~1" >"%EP_WORK%\hb-ls8.txt" 2>nul
for /f "usebackq delims=" %%D in ("%EP_WORK%\hb-ls8.txt") do call :hb_d9 "%~1\%%D"
goto :eof
:hb_d9
if exist "%~1\info\" goto :hb_pkg
dir /b /ad "%~1" >"%EP_WORK%\hb-ls9.txt" 2>nul
for /f "usebackq delims=" %%D in ("%EP_WORK%\hb-ls9.txt") do call :hb_d10 "%~1\%%D"
goto :eof
:hb_d10
if exist "%~1\info\" goto :hb_pkg
dir /b /ad "%~1" >"%EP_WORK%\hb-ls10.txt" 2>nul
for /f "usebackq delims=" %%D in ("%EP_WORK%\hb-ls10.txt") do call :hb_d11 "%~1\%%D"
goto :eof
:hb_d11
if exist "%~1\info\" goto :hb_pkg
dir /b /ad "%~1" >"%EP_WORK%\hb-ls11.txt" 2>nul
for /f "usebackq delims=" %%D in ("%EP_WORK%\hb-ls11.txt") do call :hb_d12 "%~1\%%D"
goto :eof
:hb_d12
if exist "%~1\info\" goto :hb_pkg
goto :eof
:hb_pkg
set /a "EP_HB_U+=1"
goto :eof

rem Starts the heartbeat for the micromamba step that follows; the caller sets EP_HB_SAY,
rem EP_HB_MODE (install or remove), EP_HB_TOTAL and EP_HB_BASE (conda-meta records before the
rem step). Without a usable %%ComSpec%% or script file there is no heartbeat, and nothing else
rem changes.
:hb_start
del /f /q "%EP_WORK%\step.log" >nul 2>&1
del /f /q "%EP_WORK%\mm.done" >nul 2>&1
del /f /q "%EP_WORK%\hb.end" >nul 2>&1
del /f /q "%EP_WORK%\hb.free" >nul 2>&1
set "EP_HB_ON="
if not defined ComSpec goto :eof
if not exist "%ComSpec%" goto :eof
if not exist "%EP_HB_SELF%" goto :eof
set EP_HB_Q="%EP_HB_SELF%"
set "EP_HEARTBEAT=1"
start "" /b "%ComSpec%" /d /v:off /c %%EP_HB_Q%% <nul
set "EP_HEARTBEAT="
set "EP_HB_ON=1"
goto :eof

rem The heartbeat's files in the work folder, at the end of the run (it has ended by then).
:hb_clean
for %%N in (mm.done hb.end hb.free hb-meta.txt) do del /f /q "%EP_WORK%\%%N" >nul 2>&1
for /l %%N in (1,1,11) do del /f /q "%EP_WORK%\hb-ls%%N.txt" >nul 2>&1
goto :eof

rem The conda-meta records before a step of update.bat, which the heartbeat counts from.
:hb_base
set "EP_HB_BASE=0"
dir /b /a-d "%EP_PREFIX%\conda-meta\*.json" >"%EP_WORK%\hb-meta.txt" 2>nul
for /f "usebackq delims=" %%F in ("%EP_WORK%\hb-meta.txt") do set /a "EP_HB_BASE+=1"
goto :eof

rem After micromamba: tells the heartbeat, and waits (at most about a minute) until it has ended.
:hb_wait
type nul >"%EP_WORK%\mm.done"
if not defined EP_HB_ON goto :eof
for /l %%I in (1,1,60) do if not exist "%EP_WORK%\hb.end" "%SystemRoot%\System32\ping.exe" -n 2 127.0.0.1 >nul 2>&1
set "EP_HB_ON="
goto :eof
