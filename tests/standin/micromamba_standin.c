/*
 * micromamba_standin.c: a Windows stand-in for micromamba.exe, built at test time with mingw-w64
 * and run under wine by envpack's tests (a real micromamba.exe cannot be obtained here).
 *
 * It is honest where the tests lean on it: it refuses what micromamba 2.8.1 refuses (measured with
 * the Linux build in ../shared/tools), so a wrong command line in setup.bat fails the tests.
 *   - an unknown flag: "The following argument was not expected: X", exit 109 (CLI11's code);
 *   - a missing -f file: "failed to open ...", exit 1;
 *   - a non-empty prefix that is not a conda environment: "Non-conda folder exists at prefix";
 *   - `create -f` reads the @EXPLICIT file and finds each package by file name in CONDA_PKGS_DIRS;
 *     a line without "#<md5>" is accepted with 2.8.1's warning "Could not validate package ...:
 *     md5 and sha256 sum unknown" (the file is then not checked);
 *   - a package missing from the cache or failing its md5 is fetched again from its URL, despite
 *     --offline, as 2.8.1 does: a file:// URL that is gone gives "Download error (37) Couldn't
 *     read a file:// file [URL]"; for http(s) it connects to the proxy the environment names
 *     (HTTP_PROXY / HTTPS_PROXY, else ALL_PROXY, unless NO_PROXY names the host) or to the host,
 *     and a refused connection gives "Download error (7) Couldn't connect to server [URL]" (the
 *     real one prints that after four retries); exit 1, leaving .mambarc and conda-meta\history.
 *     Where the connection succeeds the real micromamba would download the package and install
 *     it: the stand-in cannot, says so ("standin: would download") and exits 99, which no test
 *     accepts;
 *   - with --platform it writes "platform: <subdir>" (no newline) into PREFIX\.mambarc first, as
 *     2.8.1 does.
 * On success it writes conda-meta\<name>-<version>-<build>.json per package and conda-meta\history;
 * package contents are not extracted.
 *
 * Every run appends one JSON line (exe, command line, argv, working directory, environment) to
 * the file named by STANDIN_RECORD, or to micromamba-standin.jsonl beside the exe.
 * Told to fail: STANDIN_FAIL=<code> (or a file micromamba-standin-fail.txt beside the exe holding
 * the code) exits with that code after recording, before touching anything. STANDIN_NOOP=1 exits
 * 0 without installing anything (a micromamba that "succeeds" without doing its job);
 * STANDIN_SKIP=<file name> installs every package but that one and exits 0.
 * Slowed down: STANDIN_SLOW_MS=<ms> makes it work step by step, as the real one does on a big
 * environment, so that setup.bat's progress lines can be watched: after each package passes its
 * check it is "unpacked" (an empty folder with info\index.json where 2.8.1 extracts it, in the
 * package cache: <scheme>\<host and path, ":" as "_">\<subdir>\<name-version-build>), then it
 * waits that long; each conda-meta record is followed by the same wait. Without it nothing is
 * unpacked and nothing waits. STANDIN_PACE=<file> adds two pauses, after the first package is
 * unpacked and after half the records are written: each lasts until FILE has been rewritten four
 * times (setup.bat's heartbeat rewrites its listing of conda-meta once per count), so that the
 * heartbeat is seen counting at both points however slow the machine (no timing in the tests).
 *
 * The flags it accepts are builder/envpack/mamba_cli.py's install flags; tests/test_stubs_static.py
 * checks that the two lists agree.
 */
#include <winsock2.h>
#include <ws2tcpip.h>
#include <windows.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <wchar.h>

/* accepted flags (keep in sync with mamba_cli.INSTALL_FLAGS, NO_SHORTCUTS_FLAG, install_argv) */
static const wchar_t *FLAGS_NOARG[] = {
    L"--yes", L"--offline", L"--no-rc", L"--override-channels", L"--no-shortcuts", NULL};
static const wchar_t *FLAGS_ARG[] = {L"-p", L"-f", L"--platform", NULL};

/* ------------------------------------------------------------------ utf-8 and output */

static char *utf8(const wchar_t *w) {
    int n = WideCharToMultiByte(CP_UTF8, 0, w, -1, NULL, 0, NULL, NULL);
    char *s = malloc(n > 0 ? n : 1);
    if (n > 0) WideCharToMultiByte(CP_UTF8, 0, w, -1, s, n, NULL, NULL); else s[0] = 0;
    return s;
}

static wchar_t *wide(const char *s, int len) {
    int n = MultiByteToWideChar(CP_UTF8, 0, s, len, NULL, 0);
    wchar_t *w = malloc((n + 1) * sizeof(wchar_t));
    MultiByteToWideChar(CP_UTF8, 0, s, len, w, n);
    w[n] = 0;
    return w;
}

static void out(HANDLE h, const char *s) {
    DWORD n;
    WriteFile(h, s, (DWORD)strlen(s), &n, NULL);
}

static void err(const char *s) { out(GetStdHandle(STD_ERROR_HANDLE), s); }
static void say(const char *s) { out(GetStdHandle(STD_OUTPUT_HANDLE), s); }

static void errw(const char *before, const wchar_t *w, const char *after) {
    char *s = utf8(w);
    err(before); err(s); err(after);
    free(s);
}

typedef struct { char *p; size_t len, cap; } buf_t;

static void put(buf_t *b, const char *s, size_t n) {
    if (b->len + n + 1 > b->cap) {
        b->cap = (b->len + n + 1) * 2;
        b->p = realloc(b->p, b->cap);
    }
    memcpy(b->p + b->len, s, n);
    b->len += n;
    b->p[b->len] = 0;
}

static void puts_(buf_t *b, const char *s) { put(b, s, strlen(s)); }

static void put_json_str(buf_t *b, const wchar_t *w) {
    char *s = utf8(w);
    put(b, "\"", 1);
    for (const unsigned char *c = (const unsigned char *)s; *c; c++) {
        char esc[8];
        if (*c == '"' || *c == '\\') { esc[0] = '\\'; esc[1] = (char)*c; put(b, esc, 2); }
        else if (*c < 0x20) { snprintf(esc, sizeof esc, "\\u%04x", *c); put(b, esc, 6); }
        else put(b, (const char *)c, 1);
    }
    put(b, "\"", 1);
    free(s);
}

static int write_file(const wchar_t *path, const char *data, size_t n, BOOL append) {
    HANDLE h = CreateFileW(path, append ? FILE_APPEND_DATA : GENERIC_WRITE, FILE_SHARE_READ, NULL,
                           append ? OPEN_ALWAYS : CREATE_ALWAYS, FILE_ATTRIBUTE_NORMAL, NULL);
    DWORD w;
    if (h == INVALID_HANDLE_VALUE) return 0;
    BOOL ok = WriteFile(h, data, (DWORD)n, &w, NULL);
    CloseHandle(h);
    return ok && w == n;
}

static char *read_file(const wchar_t *path, size_t *len) {
    HANDLE h = CreateFileW(path, GENERIC_READ, FILE_SHARE_READ | FILE_SHARE_WRITE, NULL, OPEN_EXISTING,
                           FILE_ATTRIBUTE_NORMAL, NULL);
    LARGE_INTEGER size;
    if (h == INVALID_HANDLE_VALUE) return NULL;
    GetFileSizeEx(h, &size);
    char *data = malloc((size_t)size.QuadPart + 1);
    DWORD got = 0;
    size_t total = 0;
    while (total < (size_t)size.QuadPart &&
           ReadFile(h, data + total, (DWORD)((size_t)size.QuadPart - total), &got, NULL) && got)
        total += got;
    CloseHandle(h);
    data[total] = 0;
    *len = total;
    return data;
}

static wchar_t *exe_dir(void) {
    static wchar_t path[32768];
    GetModuleFileNameW(NULL, path, 32768);
    wchar_t *slash = wcsrchr(path, L'\\');
    if (slash) *slash = 0;
    return path;
}

static wchar_t *join(const wchar_t *a, const wchar_t *b) {
    size_t n = wcslen(a) + wcslen(b) + 2;
    wchar_t *p = malloc(n * sizeof(wchar_t));
    swprintf(p, n, L"%ls\\%ls", a, b);
    return p;
}

/* ------------------------------------------------------------------ the record */

static void record(int argc, wchar_t **argv) {
    buf_t b = {0};
    wchar_t cwd[32768];
    wchar_t exe[32768];
    GetCurrentDirectoryW(32768, cwd);
    GetModuleFileNameW(NULL, exe, 32768);
    puts_(&b, "{\"exe\": ");
    put_json_str(&b, exe);
    puts_(&b, ", \"cmdline\": ");
    put_json_str(&b, GetCommandLineW());
    puts_(&b, ", \"argv\": [");
    for (int i = 0; i < argc; i++) {
        if (i) puts_(&b, ", ");
        put_json_str(&b, argv[i]);
    }
    puts_(&b, "], \"cwd\": ");
    put_json_str(&b, cwd);
    puts_(&b, ", \"env\": {");
    wchar_t *env = GetEnvironmentStringsW();
    int first = 1;
    for (wchar_t *e = env; *e; e += wcslen(e) + 1) {
        wchar_t *eq = wcschr(e + 1, L'=');  /* +1: skip the "=C:" entries' leading '=' */
        if (!eq || e[0] == L'=') continue;
        *eq = 0;
        if (!first) puts_(&b, ", ");
        first = 0;
        put_json_str(&b, e);
        puts_(&b, ": ");
        put_json_str(&b, eq + 1);
        *eq = L'=';
    }
    FreeEnvironmentStringsW(env);
    puts_(&b, "}}\n");
    const wchar_t *target = _wgetenv(L"STANDIN_RECORD");
    wchar_t *fallback = NULL;
    if (!target || !*target) target = fallback = join(exe_dir(), L"micromamba-standin.jsonl");
    if (!write_file(target, b.p, b.len, TRUE)) errw("standin: cannot write record ", target, "\n");
    free(fallback);
    free(b.p);
}

static int told_to_fail(void) {
    const wchar_t *code = _wgetenv(L"STANDIN_FAIL");
    if (code && *code) return _wtoi(code) ? _wtoi(code) : 1;
    wchar_t *marker = join(exe_dir(), L"micromamba-standin-fail.txt");
    size_t n;
    char *data = read_file(marker, &n);
    free(marker);
    if (!data) return 0;
    int rc = atoi(data);
    free(data);
    return rc ? rc : 1;
}

/* ------------------------------------------------------------------ md5 (RFC 1321) */

typedef struct { unsigned int a, b, c, d; unsigned long long n; unsigned char buf[64]; } md5_t;

static const unsigned int K[64] = {
    0xd76aa478, 0xe8c7b756, 0x242070db, 0xc1bdceee, 0xf57c0faf, 0x4787c62a, 0xa8304613, 0xfd469501,
    0x698098d8, 0x8b44f7af, 0xffff5bb1, 0x895cd7be, 0x6b901122, 0xfd987193, 0xa679438e, 0x49b40821,
    0xf61e2562, 0xc040b340, 0x265e5a51, 0xe9b6c7aa, 0xd62f105d, 0x02441453, 0xd8a1e681, 0xe7d3fbc8,
    0x21e1cde6, 0xc33707d6, 0xf4d50d87, 0x455a14ed, 0xa9e3e905, 0xfcefa3f8, 0x676f02d9, 0x8d2a4c8a,
    0xfffa3942, 0x8771f681, 0x6d9d6122, 0xfde5380c, 0xa4beea44, 0x4bdecfa9, 0xf6bb4b60, 0xbebfbc70,
    0x289b7ec6, 0xeaa127fa, 0xd4ef3085, 0x04881d05, 0xd9d4d039, 0xe6db99e5, 0x1fa27cf8, 0xc4ac5665,
    0xf4292244, 0x432aff97, 0xab9423a7, 0xfc93a039, 0x655b59c3, 0x8f0ccc92, 0xffeff47d, 0x85845dd1,
    0x6fa87e4f, 0xfe2ce6e0, 0xa3014314, 0x4e0811a1, 0xf7537e82, 0xbd3af235, 0x2ad7d2bb, 0xeb86d391};
static const int R[64] = {7, 12, 17, 22, 7, 12, 17, 22, 7, 12, 17, 22, 7, 12, 17, 22,
                          5, 9,  14, 20, 5, 9,  14, 20, 5, 9,  14, 20, 5, 9,  14, 20,
                          4, 11, 16, 23, 4, 11, 16, 23, 4, 11, 16, 23, 4, 11, 16, 23,
                          6, 10, 15, 21, 6, 10, 15, 21, 6, 10, 15, 21, 6, 10, 15, 21};

static void md5_block(md5_t *m, const unsigned char *p) {
    unsigned int w[16], a = m->a, b = m->b, c = m->c, d = m->d;
    for (int i = 0; i < 16; i++)
        w[i] = p[i * 4] | (p[i * 4 + 1] << 8) | (p[i * 4 + 2] << 16) | ((unsigned int)p[i * 4 + 3] << 24);
    for (int i = 0; i < 64; i++) {
        unsigned int f;
        int g;
        if (i < 16) { f = (b & c) | (~b & d); g = i; }
        else if (i < 32) { f = (d & b) | (~d & c); g = (5 * i + 1) % 16; }
        else if (i < 48) { f = b ^ c ^ d; g = (3 * i + 5) % 16; }
        else { f = c ^ (b | ~d); g = (7 * i) % 16; }
        unsigned int t = d;
        d = c;
        c = b;
        unsigned int x = a + f + K[i] + w[g];
        b = b + ((x << R[i]) | (x >> (32 - R[i])));
        a = t;
    }
    m->a += a; m->b += b; m->c += c; m->d += d;
}

static void md5_hex(const unsigned char *data, size_t len, char hex[33]) {
    md5_t m = {0x67452301, 0xefcdab89, 0x98badcfe, 0x10325476, 0, {0}};
    size_t i = 0;
    for (; i + 64 <= len; i += 64) md5_block(&m, data + i);
    unsigned char tail[128] = {0};
    size_t rest = len - i;
    memcpy(tail, data + i, rest);
    tail[rest] = 0x80;
    size_t tl = rest < 56 ? 64 : 128;
    unsigned long long bits = (unsigned long long)len * 8;
    for (int k = 0; k < 8; k++) tail[tl - 8 + k] = (unsigned char)(bits >> (8 * k));
    md5_block(&m, tail);
    if (tl == 128) md5_block(&m, tail + 64);
    unsigned int words[4] = {m.a, m.b, m.c, m.d};
    for (int k = 0; k < 16; k++) sprintf(hex + 2 * k, "%02x", (words[k / 4] >> (8 * (k % 4))) & 0xff);
}

/* ------------------------------------------------------------------ explicit files */

typedef struct { char *url; char *fn; char *md5; } pkg_t;

static int hexval(char c) {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

static char *percent_decode(const char *s, size_t n) {
    char *o = malloc(n + 1);
    size_t j = 0;
    for (size_t i = 0; i < n; i++) {
        if (s[i] == '%' && i + 2 < n && hexval(s[i + 1]) >= 0 && hexval(s[i + 2]) >= 0) {
            o[j++] = (char)(hexval(s[i + 1]) * 16 + hexval(s[i + 2]));
            i += 2;
        } else o[j++] = s[i];
    }
    o[j] = 0;
    return o;
}

/* Parses the @EXPLICIT file; returns the package count, or -1 with a message printed. */
static int parse_explicit(char *text, pkg_t *pkgs, int max) {
    int count = 0, seen_header = 0;
    for (char *line = strtok(text, "\r\n"); line; line = strtok(NULL, "\r\n")) {
        while (*line == ' ' || *line == '\t') line++;
        if (!*line || *line == '#') continue;
        if (!strcmp(line, "@EXPLICIT")) { seen_header = 1; continue; }
        if (!seen_header) {
            err("standin: only @EXPLICIT files are supported by this stand-in\n");
            return -1;
        }
        char *hash = strrchr(line, '#');
        char *md5 = NULL;
        if (hash) {
            if (strlen(hash + 1) != 32) {
                err("standin: a line's hash must be #<md5> (the stand-in checks md5 only): ");
                err(line);
                err("\n");
                return -1;
            }
            *hash = 0;
            md5 = hash + 1;
        }
        char *slash = strrchr(line, '/');
        if (!slash || count >= max) return -1;
        pkgs[count].url = line;
        pkgs[count].md5 = md5;
        pkgs[count].fn = percent_decode(slash + 1, strlen(slash + 1));
        count++;
    }
    return count;
}

/* name-version-build.conda -> the stem and its parts */
static char *stem_of(const char *fn) {
    char *s = _strdup(fn);
    size_t n = strlen(s);
    if (n > 6 && !strcmp(s + n - 6, ".conda")) s[n - 6] = 0;
    else if (n > 8 && !strcmp(s + n - 8, ".tar.bz2")) s[n - 8] = 0;
    return s;
}

static int dir_is_empty(const wchar_t *dir) {
    wchar_t *pattern = join(dir, L"*");
    WIN32_FIND_DATAW fd;
    HANDLE h = FindFirstFileW(pattern, &fd);
    free(pattern);
    if (h == INVALID_HANDLE_VALUE) return 1;
    int empty = 1;
    do {
        if (wcscmp(fd.cFileName, L".") && wcscmp(fd.cFileName, L"..")) { empty = 0; break; }
    } while (FindNextFileW(h, &fd));
    FindClose(h);
    return empty;
}

static int is_dir(const wchar_t *p) {
    DWORD a = GetFileAttributesW(p);
    return a != INVALID_FILE_ATTRIBUTES && (a & FILE_ATTRIBUTE_DIRECTORY);
}

/* The first CONDA_PKGS_DIRS entry holding fn (conda separates the list with commas). */
static wchar_t *find_in_pkgs_dirs(const wchar_t *fn) {
    const wchar_t *dirs = _wgetenv(L"CONDA_PKGS_DIRS");
    wchar_t *copy;
    if (dirs && *dirs) copy = _wcsdup(dirs);
    else {
        const wchar_t *root = _wgetenv(L"MAMBA_ROOT_PREFIX");
        if (!root) return NULL;
        copy = join(root, L"pkgs");
    }
    for (wchar_t *d = copy, *next; d; d = next) {
        next = wcschr(d, L',');
        if (next) *next++ = 0;
        if (!*d) continue;
        wchar_t *p = join(d, fn);
        if (GetFileAttributesW(p) != INVALID_FILE_ATTRIBUTES) { free(copy); return p; }
        free(p);
    }
    free(copy);
    return NULL;
}


/* ------------------------------------------------------------------ fetching again, like 2.8.1 */

static void download_error(const char *url, const char *what, const char *detail) {
    char line[8192];
    snprintf(line, sizeof line, "warning  libmamba Download error %s [%s]\n    %s\n", what, url, detail);
    err(line);
    err("warning  libmamba Retrying in 2 seconds\n");
    snprintf(line, sizeof line, "critical libmamba Download error %s [%s]\n    %s\n", what, url, detail);
    err(line);
}

/* "scheme://host[:port]/..." -> host and port (default_port when none) */
static int split_host(const char *url, char *host, size_t hn, int *port, int default_port) {
    const char *p = strstr(url, "://");
    p = p ? p + 3 : url;
    const char *at = NULL;
    for (const char *q = p; *q && *q != '/'; q++) if (*q == '@') at = q;
    if (at) p = at + 1;
    size_t i = 0;
    while (p[i] && p[i] != '/' && p[i] != ':' && i + 1 < hn) { host[i] = p[i]; i++; }
    host[i] = 0;
    *port = p[i] == ':' ? atoi(p + i + 1) : default_port;
    return i > 0;
}

static char *env8(const wchar_t *name) {
    const wchar_t *v = _wgetenv(name);  /* case-insensitive, as on Windows */
    return v && *v ? utf8(v) : NULL;
}

static int no_proxy_for(const char *host) {
    char *list = env8(L"NO_PROXY");
    if (!list) return 0;
    int hit = 0;
    for (char *e = strtok(list, ", "); e && !hit; e = strtok(NULL, ", ")) {
        while (*e == '.') e++;
        size_t n = strlen(e), h = strlen(host);
        if (!strcmp(e, "*") || !_stricmp(e, host) ||
            (h > n && host[h - n - 1] == '.' && !_stricmp(host + h - n, e)))
            hit = 1;
    }
    free(list);
    return hit;
}

/* 0: connected; otherwise the message is printed */
static int try_connect(const char *url, const char *host, int port, int is_proxy) {
    WSADATA wsa;
    WSAStartup(MAKEWORD(2, 2), &wsa);
    char service[16], detail[1024];
    snprintf(service, sizeof service, "%d", port);
    struct addrinfo hints = {0}, *res = NULL;
    hints.ai_socktype = SOCK_STREAM;
    if (getaddrinfo(host, service, &hints, &res) != 0 || !res) {
        snprintf(detail, sizeof detail, "Could not resolve %s: %s", is_proxy ? "proxy" : "host", host);
        download_error(url, is_proxy ? "(5) Couldn't resolve proxy name" : "(6) Couldn't resolve host name", detail);
        return 1;
    }
    SOCKET s = socket(res->ai_family, res->ai_socktype, res->ai_protocol);
    int rc = connect(s, res->ai_addr, (int)res->ai_addrlen);
    closesocket(s);
    freeaddrinfo(res);
    if (rc != 0) {
        snprintf(detail, sizeof detail, "Failed to connect to %s port %d after 0 ms: Couldn't connect to server", host, port);
        download_error(url, "(7) Couldn't connect to server", detail);
        return 1;
    }
    return 0;
}

/* The package's own URL, as 2.8.1 tries it when the cached copy is missing or damaged:
 * 0 when a good copy was found there (file:// only), 1 on failure (printed), 99 when the
 * stand-in reached the network where the real micromamba would download. */
static int refetch(const char *url, const char *md5) {
    if (!_strnicmp(url, "file://", 7)) {
        char *path = percent_decode(url + 7, strlen(url + 7));
        char *p = path;
        if (p[0] == '/' && p[1] && p[2] == ':') p++;  /* file:///C:/x -> C:/x */
        for (char *c = p; *c; c++) if (*c == '/') *c = '\\';
        wchar_t *w = wide(p, -1);
        size_t size;
        char *data = read_file(w, &size);
        free(w);
        if (!data) {
            char detail[8192];
            snprintf(detail, sizeof detail, "Couldn't open file %s", url + 7);
            download_error(url, "(37) Couldn't read a file:// file", detail);
            free(path);
            return 1;
        }
        char hex[33];
        md5_hex((const unsigned char *)data, size, hex);
        free(data);
        free(path);
        if (md5 && _stricmp(hex, md5)) {
            err("error    libmamba File not valid: MD5 doesn't match expectation\n");
            err("critical libmamba Found incorrect downloads. Aborting\n");
            return 1;
        }
        return 0;
    }
    int https = !_strnicmp(url, "https://", 8);
    if (!https && _strnicmp(url, "http://", 7)) {
        download_error(url, "(1) Unsupported protocol", "Protocol not supported or disabled in libcurl");
        return 1;
    }
    char host[512], phost[512];
    int port, pport;
    if (!split_host(url, host, sizeof host, &port, https ? 443 : 80)) {
        download_error(url, "(3) URL using bad/illegal format or missing URL", "bad URL");
        return 1;
    }
    char *proxy = no_proxy_for(host) ? NULL : env8(https ? L"HTTPS_PROXY" : L"HTTP_PROXY");
    if (!proxy && !no_proxy_for(host)) proxy = env8(L"ALL_PROXY");
    int rc;
    if (proxy) {
        split_host(proxy, phost, sizeof phost, &pport, 1080);
        rc = try_connect(url, phost, pport, 1);
    } else {
        rc = try_connect(url, host, port, 0);
    }
    if (rc) { free(proxy); return 1; }
    char line[8192];
    snprintf(line, sizeof line,
             "standin: would download %s (through %s): the real micromamba fetches it again here "
             "and installs it\n", url, proxy ? proxy : "no proxy");
    err(line);
    free(proxy);
    return 99;
}

/* Every missing folder of path, as CreateDirectory cannot. */
static void mkdirs(wchar_t *path) {
    for (wchar_t *c = path; *c; c++) {
        if ((*c == L'\\' || *c == L'/') && c > path && c[-1] != L':') {
            wchar_t keep = *c;
            *c = 0;
            CreateDirectoryW(path, NULL);
            *c = keep;
        }
    }
    CreateDirectoryW(path, NULL);
}

/* STANDIN_SLOW_MS: "unpack" a checked package where 2.8.1 extracts it (mamba#4163), beside the
 * package file in the cache: <cache>\<scheme>\<host/path of the URL's folder, ':' as '_'>\<dist>. */
static void unpack_slowly(const wchar_t *cached, const char *url, const char *fn, int ms) {
    if (ms < 0 || !cached) return;
    const char *sep = strstr(url, "://");
    if (!sep) return;
    char *where = percent_decode(sep + 3, strlen(sep + 3));
    char *slash = strrchr(where, '/');
    if (slash) *slash = 0;
    for (char *c = where; *c; c++) {
        if (*c == ':') *c = '_';
        if (*c == '/') *c = '\\';
    }
    char *stem = stem_of(fn);
    char rel[8192];
    snprintf(rel, sizeof rel, "%.*s\\%s\\%s\\info", (int)(sep - url), url, where, stem);
    wchar_t *dir = _wcsdup(cached);
    wchar_t *last = wcsrchr(dir, L'\\');
    if (last) *last = 0;
    wchar_t *wrel = wide(rel, -1);
    wchar_t *info = join(dir, wrel);
    mkdirs(info);
    wchar_t *index = join(info, L"index.json");
    write_file(index, "{}\n", 3, FALSE);
    free(index); free(info); free(wrel); free(dir); free(stem); free(where);
    if (ms > 0) Sleep((DWORD)ms);
}

/* STANDIN_PACE: wait until the file has been rewritten four times; at most three minutes (about
 * 20 times what four counts take under wine here), so that a heartbeat that never counts fails
 * the test within the test's own time limit. */
static void pace(void) {
    const wchar_t *file = _wgetenv(L"STANDIN_PACE");
    if (!file || !*file) return;
    WIN32_FILE_ATTRIBUTE_DATA a;
    FILETIME seen = {0, 0};
    if (GetFileAttributesExW(file, GetFileExInfoStandard, &a)) seen = a.ftLastWriteTime;
    int changes = 0;
    for (int i = 0; i < 3 * 60 * 20 && changes < 4; i++) {
        Sleep(50);
        if (!GetFileAttributesExW(file, GetFileExInfoStandard, &a)) continue;
        if (CompareFileTime(&a.ftLastWriteTime, &seen) != 0) {
            seen = a.ftLastWriteTime;
            changes++;
        }
    }
}

static int create(const wchar_t *prefix, const wchar_t *file, const wchar_t *platform,
                  const wchar_t *cmdline) {
    size_t len;
    char *text = read_file(file, &len);
    if (!text) {
        errw("critical libmamba failed to open ", file, ": No such file or directory\n");
        return 1;
    }
    if (is_dir(prefix) && !dir_is_empty(prefix)) {
        wchar_t *meta = join(prefix, L"conda-meta");
        int conda = is_dir(meta);
        free(meta);
        if (!conda) {
            err("critical libmamba Non-conda folder exists at prefix - aborting.\n");
            return 1;
        }
    }
    static pkg_t pkgs[4096];
    int n = parse_explicit(text, pkgs, 4096);
    if (n < 0) return 1;
    const wchar_t *slow_env = _wgetenv(L"STANDIN_SLOW_MS");
    int slow = slow_env && *slow_env ? _wtoi(slow_env) : -1;

    /* like micromamba: the prefix and its history exist before the packages are checked */
    CreateDirectoryW(prefix, NULL);
    if (platform) {
        wchar_t *rc_file = join(prefix, L".mambarc");
        char *plat = utf8(platform);
        buf_t r = {0};
        puts_(&r, "platform: ");
        puts_(&r, plat);
        write_file(rc_file, r.p, r.len, FALSE);
        free(r.p);
        free(plat);
        free(rc_file);
    }
    wchar_t *meta = join(prefix, L"conda-meta");
    CreateDirectoryW(meta, NULL);
    wchar_t *history = join(meta, L"history");
    char *cmd8 = utf8(cmdline);
    buf_t h = {0};
    puts_(&h, "==> envpack stand-in <==\n# cmd: ");
    puts_(&h, cmd8);
    puts_(&h, "\n");
    if (!write_file(history, h.p, h.len, TRUE)) {
        errw("critical libmamba cannot write ", history, "\n");
        return 1;
    }
    h.len = 0;

    for (int i = 0; i < n; i++) {
        wchar_t *fn = wide(pkgs[i].fn, -1);
        wchar_t *path = find_in_pkgs_dirs(fn);
        int good = 0;
        if (path && !pkgs[i].md5) {
            errw("warning  libmamba Could not validate package '", path,
                 "': md5 and sha256 sum unknown.\n    Set safety_checks to disabled to override "
                 "this warning.\n");
            good = 1;
        } else if (path) {
            size_t size;
            char *data = read_file(path, &size);
            char hex[33];
            md5_hex((const unsigned char *)data, size, hex);
            free(data);
            good = !_stricmp(hex, pkgs[i].md5);
        }
        if (good && slow >= 0) {
            unpack_slowly(path, pkgs[i].url, pkgs[i].fn, slow);
            if (i == 0) pace();
        }
        free(path);
        free(fn);
        if (!good) {
            int rc = refetch(pkgs[i].url, pkgs[i].md5);
            if (rc) return rc;
        }
    }
    const wchar_t *skip = _wgetenv(L"STANDIN_SKIP");
    char *skip8 = skip && *skip ? utf8(skip) : NULL;
    for (int i = 0; i < n; i++) {
        if (skip8 && !strcmp(skip8, pkgs[i].fn)) continue;
        char *stem = stem_of(pkgs[i].fn);
        char *build = strrchr(stem, '-');
        *build++ = 0;
        char *version = strrchr(stem, '-');
        *version++ = 0;
        buf_t j = {0};
        char line[4096];
        snprintf(line, sizeof line,
                 "{\"name\": \"%s\", \"version\": \"%s\", \"build\": \"%s\", \"fn\": \"%s\", "
                 "\"url\": \"%s\", \"md5\": \"%s\", \"files\": []}\n",
                 stem, version, build, pkgs[i].fn, pkgs[i].url, pkgs[i].md5 ? pkgs[i].md5 : "");
        puts_(&j, line);
        snprintf(line, sizeof line, "%s-%s-%s.json", stem, version, build);
        wchar_t *name = wide(line, -1);
        wchar_t *target = join(meta, name);
        if (!write_file(target, j.p, j.len, FALSE)) {
            errw("critical libmamba cannot write ", target, "\n");
            return 1;
        }
        snprintf(line, sizeof line, "+%s\n", pkgs[i].url);
        puts_(&h, line);
        printf("Linking %s-%s-%s\n", stem, version, build);
        if (slow > 0) {
            fflush(stdout);
            Sleep((DWORD)slow);
        }
        if (slow >= 0 && i == n / 2) pace();
    }
    write_file(history, h.p ? h.p : "", h.len, TRUE);
    say("\nTransaction finished\n");
    return 0;
}

/* ------------------------------------------------------------------ main */

static int in(const wchar_t *s, const wchar_t **list) {
    for (; *list; list++)
        if (!wcscmp(s, *list)) return 1;
    return 0;
}

int wmain(int argc, wchar_t **argv) {
    record(argc, argv);
    int fail = told_to_fail();
    if (fail) {
        fprintf(stderr, "standin: failing as told, exit %d\n", fail);
        return fail;
    }
    if (argc >= 2 && !wcscmp(argv[1], L"--version")) {
        say("2.8.1\n");
        return 0;
    }
    if (argc < 2 || wcscmp(argv[1], L"create")) {
        err("standin: only 'create' and '--version' are implemented\n");
        return 2;
    }
    const wchar_t *prefix = NULL, *file = NULL, *platform = NULL;
    for (int i = 2; i < argc; i++) {
        if (in(argv[i], FLAGS_NOARG)) continue;
        if (in(argv[i], FLAGS_ARG)) {
            if (i + 1 >= argc) {
                errw("", argv[i], " requires an argument\nRun with --help for more information.\n");
                return 109;
            }
            if (!wcscmp(argv[i], L"-p")) prefix = argv[i + 1];
            else if (!wcscmp(argv[i], L"-f")) file = argv[i + 1];
            else platform = argv[i + 1];
            i++;
            continue;
        }
        errw("The following argument was not expected: ", argv[i],
             "\nRun with --help for more information.\n");
        return 109;
    }
    if (!prefix || !file) {
        err("standin: needs -p PREFIX and -f EXPLICIT_FILE\n");
        return 2;
    }
    if (platform && wcscmp(platform, L"win-64") && wcscmp(platform, L"noarch")) {
        errw("standin: unsupported platform ", platform, "\n");
        return 2;
    }
    const wchar_t *noop = _wgetenv(L"STANDIN_NOOP");
    if (noop && *noop) {
        say("Transaction finished\n");
        return 0;
    }
    return create(prefix, file, platform, GetCommandLineW());
}
