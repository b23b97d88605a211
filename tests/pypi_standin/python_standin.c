/*
 * python_standin.c: a Windows stand-in for an environment's python.exe, built at test time with
 * mingw-w64, for the tests of stubs/pip-step.bat under wine. It appends to the file named by
 * STANDIN_PY_RECORD one "arg=<argument>" line per argument and one "env=<NAME>=<value>" line
 * per variable of the environment whose name starts with PIP_ or PYTHON (or "env=<NAME>" unset
 * for the few the step must clear), prints "standin pip output" and exits with the number in
 * STANDIN_PY_EXIT (0 when absent).
 */
#include <stdio.h>
#include <stdlib.h>
#include <wchar.h>

extern wchar_t **_wenviron;

int wmain(int argc, wchar_t **argv) {
    const wchar_t *record = _wgetenv(L"STANDIN_PY_RECORD");
    const wchar_t *code = _wgetenv(L"STANDIN_PY_EXIT");
    FILE *f;
    if (record && (f = _wfopen(record, L"a"))) {
        for (int i = 1; i < argc; i++) fprintf(f, "arg=%ls\n", argv[i]);
        for (wchar_t **e = _wenviron; e && *e; e++) {
            if (wcsncmp(*e, L"PIP_", 4) == 0 || wcsncmp(*e, L"PYTHON", 6) == 0)
                fprintf(f, "env=%ls\n", *e);
        }
        fclose(f);
    }
    printf("standin pip output\n");
    return code ? _wtoi(code) : 0;
}
