/*
 * tar_standin.c: a Windows stand-in for the tar.exe built into Windows 10+ (libarchive's bsdtar),
 * built at test time with mingw-w64 and run under wine, where tar.exe is absent. Only what the
 * self-extracting setup.bat uses: `tar --version` and `tar -xf FILE [-C DIR]` on a zip archive.
 *
 * It reads the zip the way libarchive's seekable zip reader does: the end-of-central-directory
 * record is searched from the end of the file, and when data is prepended to the archive the
 * offsets are corrected by the distance between where the central directory is and where it
 * says it is. Entries must be stored (envpack's bundles are); anything else (deflate, ZIP64, a
 * CRC mismatch, a name with ".." or a drive) fails with exit 1, as it would be a different
 * archive from the one envpack writes. Linux's bsdtar checks the real reader in the tests.
 *
 * Every run appends its argv and working directory as one JSON line to STANDIN_TAR_RECORD
 * when that variable is set.
 */
#include <windows.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <wchar.h>

static void fail(const char *msg) {
    fprintf(stderr, "tar: %s\n", msg);
    exit(1);
}

static char *utf8(const wchar_t *w) {
    int n = WideCharToMultiByte(CP_UTF8, 0, w, -1, NULL, 0, NULL, NULL);
    char *s = malloc(n > 0 ? n : 1);
    if (n > 0) WideCharToMultiByte(CP_UTF8, 0, w, -1, s, n, NULL, NULL); else s[0] = 0;
    return s;
}

static void json_str(FILE *f, const wchar_t *w) {
    char *s = utf8(w);
    fputc('"', f);
    for (const unsigned char *c = (const unsigned char *)s; *c; c++) {
        if (*c == '"' || *c == '\\') fprintf(f, "\\%c", *c);
        else if (*c < 0x20) fprintf(f, "\\u%04x", *c);
        else fputc(*c, f);
    }
    fputc('"', f);
    free(s);
}

static void record(int argc, wchar_t **argv) {
    const wchar_t *target = _wgetenv(L"STANDIN_TAR_RECORD");
    if (!target || !*target) return;
    FILE *f = _wfopen(target, L"ab");
    if (!f) fail("cannot write STANDIN_TAR_RECORD");
    wchar_t cwd[32768];
    GetCurrentDirectoryW(32768, cwd);
    fputs("{\"argv\": [", f);
    for (int i = 0; i < argc; i++) {
        if (i) fputs(", ", f);
        json_str(f, argv[i]);
    }
    fputs("], \"cwd\": ", f);
    json_str(f, cwd);
    fputs("}\n", f);
    fclose(f);
}

static unsigned int crc_table[256];

static unsigned int crc32(const unsigned char *p, size_t n) {
    if (!crc_table[1])
        for (unsigned int i = 0; i < 256; i++) {
            unsigned int c = i;
            for (int k = 0; k < 8; k++) c = c & 1 ? 0xedb88320u ^ (c >> 1) : c >> 1;
            crc_table[i] = c;
        }
    unsigned int c = 0xffffffffu;
    for (size_t i = 0; i < n; i++) c = crc_table[(c ^ p[i]) & 0xff] ^ (c >> 8);
    return c ^ 0xffffffffu;
}

static unsigned int u16(const unsigned char *p) { return p[0] | (p[1] << 8); }
static unsigned int u32(const unsigned char *p) {
    return p[0] | (p[1] << 8) | (p[2] << 16) | ((unsigned int)p[3] << 24);
}

static wchar_t *wide(const char *s, int len) {
    int n = MultiByteToWideChar(CP_UTF8, 0, s, len, NULL, 0);
    wchar_t *w = malloc((n + 1) * sizeof(wchar_t));
    MultiByteToWideChar(CP_UTF8, 0, s, len, w, n);
    w[n] = 0;
    return w;
}

/* creates every parent folder of a relative path with backslashes */
static void make_parents(wchar_t *path) {
    for (wchar_t *p = path; *p; p++) {
        if (*p == L'\\') {
            *p = 0;
            CreateDirectoryW(path, NULL);
            *p = L'\\';
        }
    }
}

static int extract(const wchar_t *archive) {
    FILE *f = _wfopen(archive, L"rb");
    if (!f) fail("Error opening archive: Failed to open");
    _fseeki64(f, 0, SEEK_END);
    long long size = _ftelli64(f);
    _fseeki64(f, 0, SEEK_SET);
    unsigned char *data = malloc((size_t)size + 1);
    if (fread(data, 1, (size_t)size, f) != (size_t)size) fail("read error");
    fclose(f);

    long long eocd = -1;
    for (long long i = size - 22; i >= 0 && i >= size - 22 - 65535; i--)
        if (u32(data + i) == 0x06054b50u) { eocd = i; break; }
    if (eocd < 0) fail("Error opening archive: Unrecognized archive format");
    unsigned int entries = u16(data + eocd + 10);
    unsigned int cd_size = u32(data + eocd + 12);
    unsigned int cd_offset = u32(data + eocd + 16);
    if (entries == 0xffff || cd_size == 0xffffffffu || cd_offset == 0xffffffffu)
        fail("ZIP64 archives are not supported by this stand-in");
    long long cd_start = eocd - cd_size;
    long long delta = cd_start - cd_offset;  /* bytes prepended to the archive (0 if absolute) */
    if (cd_start < 0 || delta < 0) fail("Damaged Zip archive");

    const unsigned char *p = data + cd_start;
    for (unsigned int e = 0; e < entries; e++) {
        if (p + 46 > data + eocd || u32(p) != 0x02014b50u) fail("Damaged Zip archive");
        unsigned int method = u16(p + 10), crc = u32(p + 16), csize = u32(p + 20);
        unsigned int usize = u32(p + 24), nlen = u16(p + 28), xlen = u16(p + 30);
        unsigned int clen = u16(p + 32);
        long long local = (long long)u32(p + 42) + delta;
        char *name = malloc(nlen + 1);
        memcpy(name, p + 46, nlen);
        name[nlen] = 0;
        p += 46 + nlen + xlen + clen;
        if (strstr(name, "..") || name[0] == '/' || strchr(name, ':')) fail("Path contains '..'");
        wchar_t *wname = wide(name, -1);
        for (wchar_t *c = wname; *c; c++)
            if (*c == L'/') *c = L'\\';
        size_t wl = wcslen(wname);
        if (wl && wname[wl - 1] == L'\\') {
            make_parents(wname);
            free(wname);
            free(name);
            continue;
        }
        if (method != 0) fail("Unsupported ZIP compression method (only stored entries)");
        if (local + 30 > size || u32(data + local) != 0x04034b50u) fail("Damaged Zip archive");
        long long start = local + 30 + u16(data + local + 26) + u16(data + local + 28);
        if (start + csize > size || csize != usize) fail("Truncated ZIP file data");
        if (crc32(data + start, csize) != crc) fail("ZIP bad CRC");
        make_parents(wname);
        FILE *o = _wfopen(wname, L"wb");
        if (!o) fail("Can't create file");
        if (fwrite(data + start, 1, csize, o) != csize) fail("Write failed");
        fclose(o);
        free(wname);
        free(name);
    }
    free(data);
    return 0;
}

int wmain(int argc, wchar_t **argv) {
    record(argc, argv);
    const wchar_t *file = NULL, *dir = NULL;
    int x = 0;
    for (int i = 1; i < argc; i++) {
        if (!wcscmp(argv[i], L"--version")) {
            puts("bsdtar 3.7.2 - libarchive 3.7.2 (envpack test stand-in)");
            return 0;
        } else if (!wcscmp(argv[i], L"-xf") && i + 1 < argc) {
            x = 1;
            file = argv[++i];
        } else if (!wcscmp(argv[i], L"-x")) {
            x = 1;
        } else if (!wcscmp(argv[i], L"-f") && i + 1 < argc) {
            file = argv[++i];
        } else if (!wcscmp(argv[i], L"-C") && i + 1 < argc) {
            dir = argv[++i];
        } else {
            fprintf(stderr, "tar: unsupported option in this stand-in\n");
            return 1;
        }
    }
    if (!x || !file) fail("Must specify one of -c, -r, -t, -u, -x");
    if (!wcscmp(file, L"-")) fail("this stand-in does not read archives from stdin");
    if (dir && !SetCurrentDirectoryW(dir)) fail("could not chdir");
    return extract(file);
}
