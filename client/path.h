/*
 * path: the chroot mapping. Client paths are what the application sees;
 * server paths are what goes on the wire. Pure code.
 */
#ifndef QC_PATH_H
#define QC_PATH_H

#include <stdbool.h>
#include <stddef.h>

/* Whether a client path is valid for ZooKeeper (for a sequential create,
 * the path with the counter appended must be). */
bool qc_path_valid(const char *path, bool sequential);

/* The server path of a client path, malloc'd: chroot + path ("/" maps to
 * the chroot itself). chroot may be NULL. NULL when out of memory. */
char *qc_path_to_server(const char *chroot, const char *path);

/* The client path of a server path s[0..n): a pointer into s and its length
 * (*out_len), "/" (static) for the chroot itself, or NULL when the path is
 * outside the chroot. chroot may be NULL. */
const char *qc_path_from_server(const char *chroot, const char *s, size_t n, size_t *out_len);

#endif
