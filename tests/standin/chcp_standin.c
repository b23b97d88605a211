/*
 * chcp_standin.c: a Windows stand-in for chcp.com, built at test time with mingw-w64. Under wine
 * without a console the real chcp reports code page 0 and cannot switch, so the tests put this
 * one first on PATH to check that setup.bat and activate.bat switch to 65001 and switch back.
 *
 * The current code page lives in the file named by STANDIN_CHCP_STATE (850 when it is absent).
 * `chcp` prints it the way a German Windows does ("Aktive Codepage: 850."), to exercise the
 * parsing; `chcp N` sets it (like chcp.com, it prints the new page). Every run appends its
 * argument (or "query") as one line to STANDIN_CHCP_RECORD.
 */
#include <stdio.h>
#include <stdlib.h>
#include <wchar.h>

int wmain(int argc, wchar_t **argv) {
    const wchar_t *state = _wgetenv(L"STANDIN_CHCP_STATE");
    const wchar_t *record = _wgetenv(L"STANDIN_CHCP_RECORD");
    int current = 850;
    FILE *f;
    if (state && (f = _wfopen(state, L"r"))) {
        if (fscanf(f, "%d", &current) != 1) current = 850;
        fclose(f);
    }
    if (record && (f = _wfopen(record, L"a"))) {
        fprintf(f, "%ls\n", argc > 1 ? argv[1] : L"query");
        fclose(f);
    }
    if (argc < 2) {
        printf("Aktive Codepage: %d.\n", current);
        return 0;
    }
    int wanted = _wtoi(argv[1]);
    if (wanted <= 0) {
        fprintf(stderr, "Parameterformat falsch - %ls\n", argv[1]);
        return 1;
    }
    if (state && (f = _wfopen(state, L"w"))) {
        fprintf(f, "%d\n", wanted);
        fclose(f);
    }
    printf("Aktive Codepage: %d.\n", wanted);
    return 0;
}
