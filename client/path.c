/*
 * path: see path.h. A chroot never ends in '/' (hosts.c refuses it), so
 * the mapping is string concatenation and a prefix test on a segment
 * boundary.
 */
#include "path.h"

#include <stdlib.h>
#include <string.h>

#include "zk.h"

bool qc_path_valid(const char *path, bool sequential)
{
	if (path == NULL)
		return false;
	if (!sequential)
		return zk_path_valid(zk_str_c(path));
	size_t n = strlen(path);
	char *p = malloc(n + 2);
	if (p == NULL)
		return false;
	memcpy(p, path, n);
	p[n] = '1';
	p[n + 1] = '\0';
	bool ok = zk_path_valid(zk_str_c(p));
	free(p);
	return ok;
}

char *qc_path_to_server(const char *chroot, const char *path)
{
	if (chroot == NULL)
		return strdup(path);
	if (strcmp(path, "/") == 0)
		return strdup(chroot);
	size_t a = strlen(chroot), b = strlen(path);
	char *s = malloc(a + b + 1);
	if (s == NULL)
		return NULL;
	memcpy(s, chroot, a);
	memcpy(s + a, path, b + 1);
	return s;
}

const char *qc_path_from_server(const char *chroot, const char *s, size_t n, size_t *out_len)
{
	if (chroot == NULL) {
		*out_len = n;
		return s;
	}
	size_t a = strlen(chroot);
	if (n < a || memcmp(s, chroot, a) != 0)
		return NULL;
	if (n == a) {
		*out_len = 1;
		return "/";
	}
	if (s[a] != '/')
		return NULL; /* "/app2" is not under "/app" */
	*out_len = n - a;
	return s + a;
}
