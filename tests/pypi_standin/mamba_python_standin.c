/*
 * mamba_python_standin.c: micromamba.exe for the pip-step tests under wine. The micromamba
 * stand-in (tests/standin/micromamba_standin.c) records conda-meta but extracts no package
 * files, so the environment would have no python.exe for pip-step.bat. This one runs that
 * stand-in (PYPI_MAMBA_STANDIN, an absolute Windows path) with the same arguments and, when it
 * succeeded for "create ... -p PREFIX", copies PYPI_PYTHON_STANDIN to PREFIX\python.exe, as
 * installing a python package would. Its exit code is the stand-in's.
 */
#include <windows.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <wchar.h>

static const wchar_t *skip_argv0(const wchar_t *line) {
    if (*line == L'"') {
        line++;
        while (*line && *line != L'"') line++;
        if (*line) line++;
    } else {
        while (*line && *line != L' ' && *line != L'\t') line++;
    }
    while (*line == L' ' || *line == L'\t') line++;
    return line;
}

int wmain(int argc, wchar_t **argv) {
    wchar_t real[32768], python[32768];
    if (!GetEnvironmentVariableW(L"PYPI_MAMBA_STANDIN", real, 32768)) {
        fwprintf(stderr, L"mamba_python_standin: PYPI_MAMBA_STANDIN is not set\n");
        return 98;
    }
    const wchar_t *rest = skip_argv0(GetCommandLineW());
    size_t n = wcslen(real) + wcslen(rest) + 8;
    wchar_t *line = malloc(n * sizeof(wchar_t));
    _snwprintf(line, n, L"\"%ls\" %ls", real, rest);
    line[n - 1] = 0;
    STARTUPINFOW si;
    PROCESS_INFORMATION pi;
    memset(&si, 0, sizeof si);
    si.cb = sizeof si;
    if (!CreateProcessW(real, line, NULL, NULL, TRUE, 0, NULL, NULL, &si, &pi)) {
        fwprintf(stderr, L"mamba_python_standin: cannot start %ls (%lu)\n", real, GetLastError());
        return 98;
    }
    WaitForSingleObject(pi.hProcess, INFINITE);
    DWORD code = 1;
    GetExitCodeProcess(pi.hProcess, &code);
    CloseHandle(pi.hProcess);
    CloseHandle(pi.hThread);
    if (code != 0 || argc < 2 || wcscmp(argv[1], L"create") != 0) return (int)code;
    if (!GetEnvironmentVariableW(L"PYPI_PYTHON_STANDIN", python, 32768)) return (int)code;
    for (int i = 2; i + 1 < argc; i++) {
        if (wcscmp(argv[i], L"-p") == 0) {
            size_t m = wcslen(argv[i + 1]) + 16;
            wchar_t *target = malloc(m * sizeof(wchar_t));
            _snwprintf(target, m, L"%ls\\python.exe", argv[i + 1]);
            target[m - 1] = 0;
            if (!CopyFileW(python, target, FALSE)) {
                fwprintf(stderr, L"mamba_python_standin: cannot copy python.exe (%lu)\n",
                         GetLastError());
                return 97;
            }
            return 0;
        }
    }
    return (int)code;
}
