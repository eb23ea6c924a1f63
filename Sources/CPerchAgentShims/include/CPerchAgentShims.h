#ifndef CPERCH_AGENT_SHIMS_H
#define CPERCH_AGENT_SHIMS_H
// What perch-agent needs from libc, libsodium and libarchive, as static inline functions with
// plain signatures: variadic calls (open, fcntl), macros (S_ISDIR, AE_IFREG, SIGKILL), and struct
// fields (statvfs, rusage, sysinfo, dirent) that Embedded Swift should not have to reach into.
// Header-only, so the same header serves the host build and the cross build.
#include <stdint.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <errno.h>
#include <fcntl.h>
#include <unistd.h>
#include <dirent.h>
#include <signal.h>
#include <time.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/resource.h>
#include <sys/types.h>
#if defined(__GLIBC__)
#include <malloc.h>
#endif
#if defined(__linux__)
#include <sys/sysinfo.h>
#include <sys/auxv.h>
#endif
#include <sodium.h>
#include <archive.h>
#include <archive_entry.h>

// ---- files ----
static inline int pa_open_read(const char *path) { return open(path, O_RDONLY | O_CLOEXEC); }
static inline int pa_open_dir(const char *path) { return open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC); }
/// Creates (or truncates) a file for writing with the given mode.
static inline int pa_open_write(const char *path, int mode) {
    return open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, (mode_t)mode);
}
/// Opens/creates without truncating (the lock file).
static inline int pa_open_rw(const char *path) { return open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0644); }
static inline long pa_read(int fd, void *buf, size_t n) {
    for (;;) { ssize_t r = read(fd, buf, n); if (r < 0 && errno == EINTR) continue; return (long)r; }
}
/// Writes all bytes; returns 0 or errno.
static inline int pa_write_all(int fd, const void *buf, size_t n) {
    const char *p = (const char *)buf;
    while (n > 0) {
        ssize_t w = write(fd, p, n);
        if (w < 0) { if (errno == EINTR) continue; return errno; }
        p += w; n -= (size_t)w;
    }
    return 0;
}
static inline int pa_close(int fd) { return close(fd); }
static inline int pa_fsync(int fd) { return fsync(fd); }
static inline int pa_ftruncate(int fd, long n) { return ftruncate(fd, (off_t)n); }
static inline int pa_errno(void) { return errno; }
static inline const char *pa_strerror(int e) { return strerror(e); }
static inline int pa_mkdir(const char *path, int mode) { return mkdir(path, (mode_t)mode); }
static inline int pa_rmdir(const char *path) { return rmdir(path); }
static inline int pa_unlink(const char *path) { return unlink(path); }
static inline int pa_rename(const char *from, const char *to) { return rename(from, to); }
static inline int pa_symlink(const char *target, const char *path) { return symlink(target, path); }
/// Reads a symlink into buf (NUL-terminated); returns the length or -1.
static inline long pa_readlink(const char *path, char *buf, size_t size) {
    ssize_t n = readlink(path, buf, size - 1);
    if (n >= 0) buf[n] = 0;
    return (long)n;
}
/// 0 = missing, 1 = regular file, 2 = directory, 3 = symlink, 4 = other. Does not follow links.
static inline int pa_kind(const char *path) {
    struct stat st;
    if (lstat(path, &st) != 0) return 0;
    if (S_ISREG(st.st_mode)) return 1;
    if (S_ISDIR(st.st_mode)) return 2;
    if (S_ISLNK(st.st_mode)) return 3;
    return 4;
}
static inline long pa_file_size(const char *path) {
    struct stat st;
    if (stat(path, &st) != 0) return -1;
    return (long)st.st_size;
}
/// Directory listing: call pa_dir_next until it returns NULL; skips "." and "..".
static inline void *pa_dir_open(const char *path) { return (void *)opendir(path); }
static inline const char *pa_dir_next(void *d) {
    struct dirent *e;
    while ((e = readdir((DIR *)d)) != NULL) {
        if (strcmp(e->d_name, ".") != 0 && strcmp(e->d_name, "..") != 0) return e->d_name;
    }
    return NULL;
}
static inline void pa_dir_close(void *d) { closedir((DIR *)d); }

// ---- locking, processes ----
/// Non-blocking exclusive flock: 0 locked, else errno (EWOULDBLOCK when another process holds it).
static inline int pa_flock_try(int fd) { return flock(fd, LOCK_EX | LOCK_NB) == 0 ? 0 : errno; }
static inline int pa_getpid(void) { return (int)getpid(); }
static inline void pa_kill_self(void) { kill(getpid(), SIGKILL); }
static inline int pa_process_alive(int pid) { return pid > 0 && (kill(pid, 0) == 0 || errno == EPERM); }
static inline const char *pa_getenv(const char *name) { return getenv(name); }
static inline void pa_sleep_ms(int ms) {
    struct timespec ts = { ms / 1000, (long)(ms % 1000) * 1000000L };
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {}
}
static inline uint64_t pa_monotonic_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}
static inline void pa_exit(int code) { exit(code); }
static inline void pa_write_stderr(const char *p, size_t n) { (void)pa_write_all(2, p, n); }
static inline void pa_write_stdout(const char *p, size_t n) { (void)pa_write_all(1, p, n); }

// ---- machine facts ----
/// Bytes available to an unprivileged writer on the filesystem holding path, or -1.
static inline long long pa_free_bytes(const char *path) {
    struct statvfs s;
    if (statvfs(path, &s) != 0) return -1;
    return (long long)s.f_bavail * (long long)s.f_frsize;
}
/// Peak resident set size of this process in bytes (ru_maxrss is KiB on Linux).
static inline long long pa_peak_rss_bytes(void) {
    struct rusage r;
    if (getrusage(RUSAGE_SELF, &r) != 0) return 0;
    return (long long)r.ru_maxrss * 1024;
}
static inline long long pa_total_ram_bytes(void) {
#if defined(__linux__)
    struct sysinfo s;
    if (sysinfo(&s) != 0) return 0;
    return (long long)s.totalram * (long long)s.mem_unit;
#else
    return 0;
#endif
}
/// Returns freed heap memory to the kernel (glibc keeps large freed blocks otherwise: its mmap
/// threshold grows after the first big free, so the model file and input copies would stay resident).
static inline void pa_release_free_memory(void) {
#if defined(__GLIBC__)
    malloc_trim(0);
#endif
}
static inline long pa_page_size(void) { return sysconf(_SC_PAGESIZE); }
static inline int pa_online_cores(void) { return (int)sysconf(_SC_NPROCESSORS_ONLN); }
static inline unsigned long pa_hwcap(void) {
#if defined(__linux__)
    return getauxval(AT_HWCAP);
#else
    return 0;
#endif
}
static inline unsigned long pa_hwcap2(void) {
#if defined(__linux__)
    return getauxval(AT_HWCAP2);
#else
    return 0;
#endif
}

// ---- libsodium ----
static inline int pa_sodium_init(void) { return sodium_init(); }
/// 0 when sig (64 bytes) is a valid Ed25519 signature of msg by pk (32 bytes).
static inline int pa_ed25519_verify(const unsigned char *sig, const unsigned char *msg, unsigned long long len, const unsigned char *pk) {
    return crypto_sign_verify_detached(sig, msg, len, pk);
}
static inline size_t pa_sha256_state_size(void) { return sizeof(crypto_hash_sha256_state); }
static inline int pa_sha256_init(void *state) { return crypto_hash_sha256_init((crypto_hash_sha256_state *)state); }
static inline int pa_sha256_update(void *state, const unsigned char *p, unsigned long long n) {
    return crypto_hash_sha256_update((crypto_hash_sha256_state *)state, p, n);
}
static inline int pa_sha256_final(void *state, unsigned char *out32) {
    return crypto_hash_sha256_final((crypto_hash_sha256_state *)state, out32);
}

// ---- libarchive (read side only: tar + zstd) ----
/// Opens a tar(.zst) file for reading; *ok = 1 on success. Free the handle with pa_archive_free either way.
static inline void *pa_archive_open(const char *path, int *ok) {
    struct archive *a = archive_read_new();
    *ok = 0;
    if (!a) return NULL;
    archive_read_support_filter_zstd(a);
    archive_read_support_format_tar(a);
    *ok = archive_read_open_filename(a, path, 65536) == ARCHIVE_OK;
    return (void *)a;
}
static inline const char *pa_archive_error(void *a) {
    const char *s = archive_error_string((struct archive *)a);
    return s ? s : "unreadable archive";
}
static inline void pa_archive_free(void *a) { archive_read_free((struct archive *)a); }
/// Entry kinds for pa_archive_next.
enum { PA_ENTRY_REGULAR = 1, PA_ENTRY_SYMLINK = 2, PA_ENTRY_HARDLINK = 3, PA_ENTRY_DIRECTORY = 4, PA_ENTRY_DEVICE = 5, PA_ENTRY_OTHER = 6 };
/// Advances to the next entry: 1 = entry, 0 = end, -1 = error. Fills name, kind, size, link target.
static inline int pa_archive_next(void *ap, const char **name, int *kind, long long *size, const char **link) {
    struct archive *a = (struct archive *)ap;
    struct archive_entry *e = NULL;
    int r = archive_read_next_header(a, &e);
    if (r == ARCHIVE_EOF) return 0;
    if (r != ARCHIVE_OK && r != ARCHIVE_WARN) return -1;
    *name = archive_entry_pathname(e);
    if (!*name) *name = "";
    *size = (long long)archive_entry_size(e);
    *link = "";
    unsigned int ft = archive_entry_filetype(e);
    if (archive_entry_hardlink(e)) { *kind = PA_ENTRY_HARDLINK; *link = archive_entry_hardlink(e); }
    else if (ft == AE_IFREG) *kind = PA_ENTRY_REGULAR;
    else if (ft == AE_IFLNK) { *kind = PA_ENTRY_SYMLINK; *link = archive_entry_symlink(e) ? archive_entry_symlink(e) : ""; }
    else if (ft == AE_IFDIR) *kind = PA_ENTRY_DIRECTORY;
    else if (ft == AE_IFCHR || ft == AE_IFBLK || ft == AE_IFIFO) *kind = PA_ENTRY_DEVICE;
    else *kind = PA_ENTRY_OTHER;
    return 1;
}
/// Reads data of the current entry: bytes read, 0 at its end, -1 on error.
static inline long pa_archive_read(void *a, void *buf, size_t n) { return (long)archive_read_data((struct archive *)a, buf, n); }

#endif
