/*
 * epoch: reading and writing the files acceptedEpoch and currentEpoch
 * (see epoch.h for what they hold and how a write survives a crash).
 */
#include "epoch.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "log.h"

int epoch_read(const char *dir, const char *name, int64_t *out)
{
	char path[4400];
	snprintf(path, sizeof(path), "%s/%s", dir, name);
	FILE *f = fopen(path, "re");
	*out = 0;
	if (f == NULL) {
		if (errno == ENOENT)
			return 0;
		int e = errno;
		log_msg(LOG_ERROR, "replica", "%s: %s", path, strerror(e));
		return -e;
	}
	long long v;
	int ok = fscanf(f, "%lld", &v);
	fclose(f);
	if (ok != 1 || v < 0) {
		log_msg(LOG_ERROR, "replica", "%s: not an epoch", path);
		return -EUCLEAN;
	}
	*out = v;
	return 0;
}

int epoch_write(const char *dir, const char *name, int64_t v)
{
	char path[4400], tmp[4410];
	snprintf(path, sizeof(path), "%s/%s", dir, name);
	snprintf(tmp, sizeof(tmp), "%s" EPOCH_TMP_SUFFIX, path);
	int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	int r = fd < 0 ? -errno : 0;
	if (fd >= 0) {
		char buf[32];
		int n = snprintf(buf, sizeof(buf), "%" PRId64 "\n", v);
		errno = 0;
		if (write(fd, buf, (size_t)n) != n || fsync(fd) < 0)
			r = errno ? -errno : -EIO;
		close(fd);
	}
	if (r == 0 && rename(tmp, path) < 0)
		r = -errno;
	if (r == 0) {
		int dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
		if (dfd < 0 || fsync(dfd) < 0)
			r = -errno;
		if (dfd >= 0)
			close(dfd);
	}
	if (r < 0) {
		if (fd >= 0)
			unlink(tmp);
		log_msg(LOG_ERROR, "replica", "writing %s: %s", path, strerror(-r));
	}
	return r;
}

int epoch_load(const char *dir, int64_t *accepted, int64_t *current)
{
	int rc = epoch_read(dir, EPOCH_ACCEPTED, accepted);
	if (rc == 0)
		rc = epoch_read(dir, EPOCH_CURRENT, current);
	return rc;
}

/* One file, written only if the value changes; *have follows the file. */
static int save_one(const char *dir, const char *name, int64_t *have, int64_t want)
{
	if (want == *have)
		return 0;
	int rc = epoch_write(dir, name, want);
	if (rc == 0)
		*have = want;
	return rc;
}

int epoch_save(const char *dir, int64_t *accepted, int64_t *current, int64_t new_accepted,
	       int64_t new_current)
{
	int rc = save_one(dir, EPOCH_ACCEPTED, accepted, new_accepted);
	return rc < 0 ? rc : save_one(dir, EPOCH_CURRENT, current, new_current);
}
