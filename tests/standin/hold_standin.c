/*
 * hold_standin.c: holds a file open the way a running program does (no FILE_SHARE_DELETE), so
 * that deleting it or its folder fails, as on a PC where the environment is still in use.
 *
 *   hold.exe FILE READY STOP
 * opens FILE, creates READY, then waits until STOP exists (at most 10 minutes) and exits 0.
 * Exit 1: FILE could not be opened; 2: READY could not be created; 3: STOP never appeared.
 */
#include <stdio.h>
#include <windows.h>

int wmain(int argc, wchar_t **argv) {
    if (argc != 4) return 64;
    HANDLE h = CreateFileW(argv[1], GENERIC_READ, FILE_SHARE_READ, NULL, OPEN_EXISTING,
                           FILE_ATTRIBUTE_NORMAL, NULL);
    if (h == INVALID_HANDLE_VALUE) {
        /* why, for the test's failure message (it keeps this program's output) */
        fwprintf(stderr, L"hold.exe: cannot open %ls: error %lu\n", argv[1], GetLastError());
        return 1;
    }
    HANDLE ready = CreateFileW(argv[2], GENERIC_WRITE, 0, NULL, CREATE_ALWAYS,
                               FILE_ATTRIBUTE_NORMAL, NULL);
    if (ready == INVALID_HANDLE_VALUE) {
        fwprintf(stderr, L"hold.exe: cannot create %ls: error %lu\n", argv[2], GetLastError());
        return 2;
    }
    CloseHandle(ready);
    for (int i = 0; i < 10 * 60 * 20; i++) {
        if (GetFileAttributesW(argv[3]) != INVALID_FILE_ATTRIBUTES) {
            CloseHandle(h);
            return 0;
        }
        Sleep(50);
    }
    CloseHandle(h);
    return 3;
}
