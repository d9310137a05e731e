/*
 * names: the small rules about names — creation suffixes (NAME#e, NAME#s,
 * NAME#es), the reserved names listings never show, path joining.
 *
 * Pure functions, no state: safe from any thread. They call nothing of the
 * daemon's.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "fs.h"

char *names_join(const char *parent, const char *name)
{
	size_t pl = strlen(parent), nl = strlen(name);
	bool root = pl == 1 && parent[0] == '/';
	char *p = malloc(pl + nl + 2);
	if (!p)
		return NULL;
	size_t at = 0;
	if (!root) {
		memcpy(p, parent, pl);
		at = pl;
	}
	p[at++] = '/';
	memcpy(p + at, name, nl + 1);
	return p;
}

const char *names_base(const char *path)
{
	const char *s = strrchr(path, '/');
	return s ? s + 1 : path;
}

char *names_parent(const char *path)
{
	const char *s = strrchr(path, '/');
	if (!s || s == path)
		return strdup("/");
	return strndup(path, (size_t)(s - path));
}

int names_suffix(const char *name, char **base, int32_t *mode)
{
	*base = NULL;
	static const struct {
		const char *suffix;
		int32_t mode;
	} table[] = {
		{ "#es", ZK_EPHEMERAL_SEQUENTIAL },
		{ "#se", ZK_EPHEMERAL_SEQUENTIAL },
		{ "#e", ZK_EPHEMERAL },
		{ "#s", ZK_PERSISTENT_SEQUENTIAL },
	};
	size_t nl = strlen(name);
	for (size_t i = 0; i < sizeof(table) / sizeof(table[0]); i++) {
		size_t sl = strlen(table[i].suffix);
		if (nl < sl || strcmp(name + nl - sl, table[i].suffix) != 0)
			continue;
		/* An ephemeral needs a name; a sequential may be all number. */
		if (nl == sl && !(table[i].mode & ZK_PERSISTENT_SEQUENTIAL))
			return 0;
		if ((table[i].mode & ZK_PERSISTENT_SEQUENTIAL) && nl - sl + 10 > FS_NAME_MAX)
			return -ENAMETOOLONG;
		*base = strndup(name, nl - sl);
		if (!*base)
			return -ENOMEM;
		*mode = table[i].mode;
		return 1;
	}
	return 0;
}

bool names_hidden(const char *name)
{
	return strcmp(name, ".") == 0 || strcmp(name, "..") == 0 ||
	       strncmp(name, FS_RESERVED_PREFIX, strlen(FS_RESERVED_PREFIX)) == 0 ||
	       strlen(name) > FS_NAME_MAX;
}

bool names_reserved_path(const char *path)
{
	for (const char *s = path; (s = strchr(s, '/')); s++)
		if (strncmp(s + 1, FS_RESERVED_PREFIX, strlen(FS_RESERVED_PREFIX)) == 0)
			return true;
	return false;
}
