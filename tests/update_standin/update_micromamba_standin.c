/* A micromamba.exe stand-in for update.bat under wine: the two commands update.bat runs.
 *
 *   remove -p PREFIX --yes --offline --no-rc --force NAME...
 *       deletes PREFIX\conda-meta\NAME-<version>-<build>.json for each NAME (exactly that name);
 *   install -p PREFIX --yes --offline --no-rc --override-channels --platform P --no-shortcuts -f FILE
 *       reads FILE's url#md5 lines; each package must be in CONDA_PKGS_DIRS (relative to the
 *       current folder, as update.bat gives it), else exit 1; writes conda-meta\<stem>.json.
 *
 * Any other flag is refused as the real parser refuses it ("The following argument was not
 * expected"); "remove" refuses --override-channels and --platform, as 2.8.1 does.
 * UPDATE_STANDIN_FAIL_AFTER=N installs N packages, then exits 1 (an interrupted run).
 * UPDATE_STANDIN_LOG=FILE appends one line per run: the command line, the current folder and
 * the variables update.bat sets for micromamba.
 */
#include <windows.h>
#include <stdio.h>
#include <stdlib.h>
#include <wchar.h>

static const wchar_t *REMOVE_FLAGS[] = {L"--yes", L"--offline", L"--no-rc", L"--force", NULL};
static const wchar_t *INSTALL_FLAGS[] = {L"--yes", L"--offline", L"--no-rc",
                                         L"--override-channels", L"--no-shortcuts", NULL};

static int in(const wchar_t *a, const wchar_t **list) {
    for (; *list; list++)
        if (!wcscmp(a, *list)) return 1;
    return 0;
}

static void logline(void) {
    wchar_t path[4096], cwd[4096], buf[4096];
    if (!GetEnvironmentVariableW(L"UPDATE_STANDIN_LOG", path, 4096)) return;
    FILE *f = _wfopen(path, L"a, ccs=UTF-8");
    if (!f) return;
    GetCurrentDirectoryW(4096, cwd);
    fwprintf(f, L"cmd=%ls|cwd=%ls", GetCommandLineW(), cwd);
    const wchar_t *vars[] = {L"MAMBA_ROOT_PREFIX", L"CONDA_PKGS_DIRS", L"HTTPS_PROXY",
                             L"USERPROFILE", L"CONDA_PREFIX", NULL};
    for (int i = 0; vars[i]; i++) {
        if (!GetEnvironmentVariableW(vars[i], buf, 4096)) wcscpy(buf, L"<unset>");
        fwprintf(f, L"|%ls=%ls", vars[i], buf);
    }
    fwprintf(f, L"\n");
    fclose(f);
}

/* "name-version-build" has name NAME when it starts with NAME- and two more dashes follow. */
static int has_name(const wchar_t *stem, const wchar_t *name) {
    size_t n = wcslen(name);
    if (wcsncmp(stem, name, n) || stem[n] != L'-') return 0;
    const wchar_t *rest = stem + n + 1;
    int dashes = 0;
    for (; *rest; rest++) if (*rest == L'-') dashes++;
    return dashes == 1;
}

static int do_remove(const wchar_t *prefix, wchar_t **names, int count) {
    wchar_t pattern[4096], file[4096];
    swprintf(pattern, 4096, L"%ls\\conda-meta\\*.json", prefix);
    for (int i = 0; i < count; i++) {
        WIN32_FIND_DATAW fd;
        HANDLE h = FindFirstFileW(pattern, &fd);
        int found = 0;
        if (h != INVALID_HANDLE_VALUE) {
            do {
                wchar_t stem[1024];
                wcsncpy(stem, fd.cFileName, 1023);
                stem[1023] = 0;
                size_t len = wcslen(stem);
                if (len > 5) stem[len - 5] = 0;
                if (has_name(stem, names[i])) {
                    swprintf(file, 4096, L"%ls\\conda-meta\\%ls", prefix, fd.cFileName);
                    DeleteFileW(file);
                    wprintf(L"Unlinking %ls\n", stem);
                    found = 1;
                }
            } while (FindNextFileW(h, &fd));
            FindClose(h);
        }
        if (!found) {
            fwprintf(stderr, L"standin: %ls is not installed\n", names[i]);
            return 1;
        }
    }
    return 0;
}

static int do_install(const wchar_t *prefix, const wchar_t *list) {
    wchar_t pkgs[4096], buf[4096];
    int fail_after = -1;
    if (GetEnvironmentVariableW(L"UPDATE_STANDIN_FAIL_AFTER", buf, 4096)) fail_after = _wtoi(buf);
    if (!GetEnvironmentVariableW(L"CONDA_PKGS_DIRS", pkgs, 4096)) {
        fwprintf(stderr, L"standin: CONDA_PKGS_DIRS is not set\n");
        return 1;
    }
    FILE *f = _wfopen(list, L"r");
    if (!f) {
        fwprintf(stderr, L"standin: cannot read %ls\n", list);
        return 1;
    }
    char line[8192];
    int done = 0;
    while (fgets(line, sizeof line, f)) {
        char *hash = strchr(line, '#');
        if (!strstr(line, "://") || !hash) continue;
        *hash = 0;
        char *fn = strrchr(line, '/') + 1;
        wchar_t wfn[1024], path[4096];
        MultiByteToWideChar(CP_UTF8, 0, fn, -1, wfn, 1024);
        swprintf(path, 4096, L"%ls\\%ls", pkgs, wfn);
        if (GetFileAttributesW(path) == INVALID_FILE_ATTRIBUTES) {
            fwprintf(stderr, L"standin: %ls is not in the package cache %ls\n", wfn, pkgs);
            fclose(f);
            return 1;
        }
        if (fail_after >= 0 && done >= fail_after) {
            fwprintf(stderr, L"standin: interrupted after %d packages\n", done);
            fclose(f);
            return 1;
        }
        wchar_t *ext = wcsstr(wfn, L".conda");
        if (!ext) ext = wcsstr(wfn, L".tar.bz2");
        if (ext) *ext = 0;
        swprintf(path, 4096, L"%ls\\conda-meta\\%ls.json", prefix, wfn);
        FILE *out = _wfopen(path, L"w");
        if (!out) {
            fwprintf(stderr, L"standin: cannot write %ls\n", path);
            fclose(f);
            return 1;
        }
        fprintf(out, "{\"standin\": true}\n");
        fclose(out);
        wprintf(L"Linking %ls\n", wfn);
        done++;
    }
    fclose(f);
    return 0;
}

int wmain(int argc, wchar_t **argv) {
    logline();
    if (argc < 2 || (wcscmp(argv[1], L"remove") && wcscmp(argv[1], L"install"))) {
        fwprintf(stderr, L"standin: only 'remove' and 'install' are implemented\n");
        return 2;
    }
    int remove = !wcscmp(argv[1], L"remove");
    const wchar_t *prefix = NULL, *file = NULL;
    wchar_t *names[256];
    int count = 0;
    for (int i = 2; i < argc; i++) {
        if (in(argv[i], remove ? REMOVE_FLAGS : INSTALL_FLAGS)) continue;
        if (!wcscmp(argv[i], L"-p") && i + 1 < argc) { prefix = argv[++i]; continue; }
        if (!remove && !wcscmp(argv[i], L"-f") && i + 1 < argc) { file = argv[++i]; continue; }
        if (!remove && !wcscmp(argv[i], L"--platform") && i + 1 < argc) { i++; continue; }
        if (remove && argv[i][0] != L'-' && count < 256) { names[count++] = argv[i]; continue; }
        fwprintf(stderr, L"The following argument was not expected: %ls\n", argv[i]);
        return 109;
    }
    if (!prefix) { fwprintf(stderr, L"standin: no -p\n"); return 2; }
    return remove ? do_remove(prefix, names, count) : (file ? do_install(prefix, file) : 2);
}
