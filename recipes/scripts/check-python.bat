@echo off
rem Runs inside the freshly activated environment at the end of setup.bat; a non-zero exit
rem fails the install, so a broken Python is found at install time, not at first use.
python -c "import sys, ssl, sqlite3; print('python', sys.version.split()[0], 'ok')"
if errorlevel 1 exit /b 1
conda --version
if errorlevel 1 exit /b 1
exit /b 0
