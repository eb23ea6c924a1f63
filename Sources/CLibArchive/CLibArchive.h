#ifndef CLIBARCHIVE_H
#define CLIBARCHIVE_H
// libarchive for PerchBundle (host side). Swift cannot import libarchive's casting macros
// (AE_IFREG, …), so they are re-exported here as functions.
#include <archive.h>
#include <archive_entry.h>

static inline unsigned int perch_ae_ifreg(void) { return AE_IFREG; }
static inline unsigned int perch_ae_iflnk(void) { return AE_IFLNK; }
static inline unsigned int perch_ae_ifdir(void) { return AE_IFDIR; }
static inline unsigned int perch_ae_ifchr(void) { return AE_IFCHR; }
static inline unsigned int perch_ae_ifblk(void) { return AE_IFBLK; }
static inline unsigned int perch_ae_ififo(void) { return AE_IFIFO; }
static inline int perch_archive_ok(void) { return ARCHIVE_OK; }
static inline int perch_archive_eof(void) { return ARCHIVE_EOF; }
static inline int perch_archive_warn(void) { return ARCHIVE_WARN; }

#endif
