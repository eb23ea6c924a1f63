// libssh2 for Swift: the library's headers plus static inline wrappers for its function-like
// macros (Swift cannot import those) and the few socket calls PerchSSH needs.
#ifndef CLIBSSH2_H
#define CLIBSSH2_H

#include <libssh2.h>
#include <libssh2_sftp.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <poll.h>
#include <fcntl.h>
#include <unistd.h>
#include <errno.h>

static inline LIBSSH2_SESSION *cssh_session_init(void) { return libssh2_session_init_ex(NULL, NULL, NULL, NULL); }
static inline int cssh_session_disconnect(LIBSSH2_SESSION *s, const char *why) {
    return libssh2_session_disconnect_ex(s, SSH_DISCONNECT_BY_APPLICATION, why, "");
}
static inline LIBSSH2_CHANNEL *cssh_channel_open_session(LIBSSH2_SESSION *s) {
    return libssh2_channel_open_ex(s, "session", sizeof("session") - 1, LIBSSH2_CHANNEL_WINDOW_DEFAULT,
                                   LIBSSH2_CHANNEL_PACKET_DEFAULT, NULL, 0);
}
static inline int cssh_channel_exec(LIBSSH2_CHANNEL *c, const char *command, unsigned int len) {
    return libssh2_channel_process_startup(c, "exec", sizeof("exec") - 1, command, len);
}
static inline ssize_t cssh_channel_read(LIBSSH2_CHANNEL *c, char *buf, size_t n) { return libssh2_channel_read_ex(c, 0, buf, n); }
static inline ssize_t cssh_channel_read_stderr(LIBSSH2_CHANNEL *c, char *buf, size_t n) {
    return libssh2_channel_read_ex(c, SSH_EXTENDED_DATA_STDERR, buf, n);
}
static inline int cssh_userauth_publickey_fromfile(LIBSSH2_SESSION *s, const char *user, unsigned int userLen,
                                                   const char *privateKey, const char *passphrase) {
    return libssh2_userauth_publickey_fromfile_ex(s, user, userLen, NULL, privateKey, passphrase);
}
static inline LIBSSH2_SFTP_HANDLE *cssh_sftp_open(LIBSSH2_SFTP *sftp, const char *path, unsigned int len,
                                                  unsigned long flags, long mode) {
    return libssh2_sftp_open_ex(sftp, path, len, flags, mode, LIBSSH2_SFTP_OPENFILE);
}
static inline int cssh_sftp_stat(LIBSSH2_SFTP *sftp, const char *path, unsigned int len, LIBSSH2_SFTP_ATTRIBUTES *attrs) {
    return libssh2_sftp_stat_ex(sftp, path, len, LIBSSH2_SFTP_STAT, attrs);
}
static inline int cssh_sftp_mkdir(LIBSSH2_SFTP *sftp, const char *path, unsigned int len, long mode) {
    return libssh2_sftp_mkdir_ex(sftp, path, len, mode);
}
static inline int cssh_sftp_fsetstat(LIBSSH2_SFTP_HANDLE *h, LIBSSH2_SFTP_ATTRIBUTES *attrs) {
    return libssh2_sftp_fstat_ex(h, attrs, 1);
}
/// SFTP v3 rename: OpenSSH's server refuses it when the new name exists (no overwrite).
static inline int cssh_sftp_rename(LIBSSH2_SFTP *sftp, const char *from, unsigned int fromLen, const char *to, unsigned int toLen) {
    return libssh2_sftp_rename_ex(sftp, from, fromLen, to, toLen,
                                  LIBSSH2_SFTP_RENAME_OVERWRITE | LIBSSH2_SFTP_RENAME_ATOMIC | LIBSSH2_SFTP_RENAME_NATIVE);
}
static inline int cssh_sftp_unlink(LIBSSH2_SFTP *sftp, const char *path, unsigned int len) {
    return libssh2_sftp_unlink_ex(sftp, path, len);
}

static const int CSSH_ERROR_EAGAIN = LIBSSH2_ERROR_EAGAIN;
static const int CSSH_SESSION_BLOCK_INBOUND = LIBSSH2_SESSION_BLOCK_INBOUND;
static const int CSSH_SESSION_BLOCK_OUTBOUND = LIBSSH2_SESSION_BLOCK_OUTBOUND;
static const int CSSH_KNOWNHOST_TYPE_PLAIN = LIBSSH2_KNOWNHOST_TYPE_PLAIN;
static const int CSSH_KNOWNHOST_KEYENC_RAW = LIBSSH2_KNOWNHOST_KEYENC_RAW;
static const int CSSH_KNOWNHOST_FILE_OPENSSH = LIBSSH2_KNOWNHOST_FILE_OPENSSH;
static const int CSSH_KNOWNHOST_CHECK_MATCH = LIBSSH2_KNOWNHOST_CHECK_MATCH;
static const int CSSH_KNOWNHOST_CHECK_MISMATCH = LIBSSH2_KNOWNHOST_CHECK_MISMATCH;
static const int CSSH_KNOWNHOST_CHECK_NOTFOUND = LIBSSH2_KNOWNHOST_CHECK_NOTFOUND;
static const unsigned long CSSH_FXF_WRITE = LIBSSH2_FXF_WRITE;
static const unsigned long CSSH_FXF_CREAT = LIBSSH2_FXF_CREAT;
static const unsigned long CSSH_FXF_TRUNC = LIBSSH2_FXF_TRUNC;
static const unsigned long CSSH_SFTP_ATTR_SIZE = LIBSSH2_SFTP_ATTR_SIZE;
static const unsigned long CSSH_SFTP_ATTR_PERMISSIONS = LIBSSH2_SFTP_ATTR_PERMISSIONS;
static const int CSSH_FX_NO_SUCH_FILE = LIBSSH2_FX_NO_SUCH_FILE;
static const int CSSH_ERROR_SFTP_PROTOCOL = LIBSSH2_ERROR_SFTP_PROTOCOL;

/// The knownhost key-type bits for a libssh2 host key type (LIBSSH2_HOSTKEY_TYPE_*), 0 if unknown.
static inline int cssh_knownhost_keybits(int hostkeyType) {
    switch (hostkeyType) {
    case LIBSSH2_HOSTKEY_TYPE_RSA: return LIBSSH2_KNOWNHOST_KEY_SSHRSA;
    case LIBSSH2_HOSTKEY_TYPE_DSS: return LIBSSH2_KNOWNHOST_KEY_SSHDSS;
    case LIBSSH2_HOSTKEY_TYPE_ECDSA_256: return LIBSSH2_KNOWNHOST_KEY_ECDSA_256;
    case LIBSSH2_HOSTKEY_TYPE_ECDSA_384: return LIBSSH2_KNOWNHOST_KEY_ECDSA_384;
    case LIBSSH2_HOSTKEY_TYPE_ECDSA_521: return LIBSSH2_KNOWNHOST_KEY_ECDSA_521;
    case LIBSSH2_HOSTKEY_TYPE_ED25519: return LIBSSH2_KNOWNHOST_KEY_ED25519;
    default: return 0;
    }
}

// Sockets: fcntl is variadic, so it gets a wrapper; the rest keeps Swift free of sockaddr casts.
static inline int cssh_set_nonblocking(int fd, int on) {
    int flags = fcntl(fd, F_GETFL, 0);
    if (flags < 0) return -1;
    return fcntl(fd, F_SETFL, on ? (flags | O_NONBLOCK) : (flags & ~O_NONBLOCK));
}
static inline int cssh_socket_error(int fd) {
    int err = 0;
    socklen_t len = sizeof(err);
    if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) != 0) return errno;
    return err;
}
static inline void cssh_tcp_tune(int fd) {
    int one = 1;
    setsockopt(fd, SOL_SOCKET, SO_KEEPALIVE, &one, sizeof(one));
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    int idle = 15, intvl = 5, cnt = 3;
    setsockopt(fd, IPPROTO_TCP, TCP_KEEPIDLE, &idle, sizeof(idle));
    setsockopt(fd, IPPROTO_TCP, TCP_KEEPINTVL, &intvl, sizeof(intvl));
    setsockopt(fd, IPPROTO_TCP, TCP_KEEPCNT, &cnt, sizeof(cnt));
}
static inline int cssh_errno(void) { return errno; }

#endif
