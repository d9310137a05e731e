/*
 * fdio: a whole buffer to or from a file descriptor, through short
 * transfers and EINTR; for blocking descriptors.
 */
#ifndef QUORUM_FDIO_H
#define QUORUM_FDIO_H

#include <stddef.h>
#include <sys/types.h>

/* Writes all n bytes. 0, or -errno (-EIO for a write that wrote nothing). */
int fd_write_all(int fd, const void *buf, size_t n);
/* Reads exactly n bytes. 0, -EPIPE at the end of the file before n, or
 * -errno. */
int fd_read_all(int fd, void *buf, size_t n);
/* The same at offset off (>= 0), the descriptor's own offset unmoved. */
int fd_pread_all(int fd, void *buf, size_t n, off_t off);

#endif
