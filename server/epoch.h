/*
 * epoch: the two numbers an ensemble member keeps beside its snapshots,
 * ZAB's persisted epochs (replication/zab.h): acceptedEpoch, the newest
 * epoch it agreed to lead or follow, and currentEpoch, the newest whose
 * history it took. Each is a file of its own holding decimal text and a
 * newline (docs/disk-format.md, section 2); absent means 0.
 *
 * DESIGN: a value is written to <name>.tmp, fsynced, renamed over <name>,
 * and the directory fsynced, so a crash at any point leaves <name> with
 * the old value or the new one, never a torn one; a <name>.tmp a crash
 * left behind is never read, and the next write truncates it. Plain file
 * I/O, no loop: server/replica.c calls it from the core's save_epochs,
 * which must be durable before the protocol goes on.
 */
#ifndef QUORUM_EPOCH_H
#define QUORUM_EPOCH_H

#include <stdint.h>

#define EPOCH_ACCEPTED "acceptedEpoch"
#define EPOCH_CURRENT "currentEpoch"
#define EPOCH_TMP_SUFFIX ".tmp" /* <name>.tmp: the write in progress */

/* Reads dir/name into *out: 0 (and *out = 0 when the file does not
 * exist), -EUCLEAN when it does not hold an epoch (not a non-negative
 * decimal number), or another negative errno. Failures are logged. */
int epoch_read(const char *dir, const char *name, int64_t *out);

/* Writes v to dir/name durably (see DESIGN above). 0 or a negative errno
 * (logged; the temporary file is removed, dir/name keeps its old value). */
int epoch_write(const char *dir, const char *name, int64_t v);

/* Both files: acceptedEpoch into *accepted, currentEpoch into *current.
 * 0 or the first failure of epoch_read(). */
int epoch_load(const char *dir, int64_t *accepted, int64_t *current);

/* ZAB's save_epochs: writes, acceptedEpoch first, each of the two that
 * differs from what *accepted and *current say is on disk, and updates
 * them as each write lands. 0, or the first failure of epoch_write()
 * (the files written before it stay written, *accepted and *current
 * say so). */
int epoch_save(const char *dir, int64_t *accepted, int64_t *current, int64_t new_accepted,
	       int64_t new_current);

#endif
