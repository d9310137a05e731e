/*
 * sidetree: escaped keys and the metadata record's text. See sidetree.h.
 *
 * The record is one line of words, the first two "quorumfs-meta 1":
 *     quorumfs-meta 1 of=CZXID [link] [mode=OOOO] [uid=N] [gid=N]
 *                     [mtime=SEC.NSEC@VERSION] [atime=SEC.NSEC@VERSION]
 *                     [ctime=SEC.NSEC] [ino=N]
 * so that a person reading it with any ZooKeeper client understands it.
 */
#include "sidetree.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAGIC "quorumfs-meta 1"

char *sidetree_key(const char *root, const char *path, const char *suffix)
{
	size_t n = strlen(root) + 1 + 3 * (strlen(path) + strlen(suffix)) + 1;
	char *key = malloc(n);
	if (!key)
		return NULL;
	size_t at = (size_t)sprintf(key, "%s/", root);
	for (int part = 0; part < 2; part++)
		for (const char *s = part ? suffix : path; *s; s++) {
			if (*s == '/')
				at += (size_t)sprintf(key + at, "%%2F");
			else if (*s == '%')
				at += (size_t)sprintf(key + at, "%%25");
			else
				key[at++] = *s;
		}
	key[at] = '\0';
	return key;
}

char *sidetree_path(const char *root, const char *key)
{
	size_t rl = strlen(root);
	if (strncmp(key, root, rl) != 0 || key[rl] != '/' || key[rl + 1] == '\0')
		return NULL;
	const char *s = key + rl + 1;
	char *p = malloc(strlen(s) + 1);
	if (!p)
		return NULL;
	size_t at = 0;
	for (; *s; s++) {
		if (*s == '/')
			break;
		if (*s != '%') {
			p[at++] = *s;
			continue;
		}
		if (strncmp(s, "%2F", 3) == 0)
			p[at++] = '/';
		else if (strncmp(s, "%25", 3) == 0)
			p[at++] = '%';
		else
			break;
		s += 2;
	}
	p[at] = '\0';
	if (*s || p[0] != '/') {
		free(p);
		return NULL;
	}
	return p;
}

/* " NAME=SEC.NSEC@VER", or without "@VER" if ver < 0. */
static int put_time(char *buf, size_t n, const char *name, int64_t ns, int32_t ver)
{
	int64_t sec = ns / 1000000000, frac = ns % 1000000000;
	if (frac < 0) {
		sec--;
		frac += 1000000000;
	}
	if (ver < 0)
		return snprintf(buf, n, " %s=%" PRId64 ".%09" PRId64, name, sec, frac);
	return snprintf(buf, n, " %s=%" PRId64 ".%09" PRId64 "@%" PRId32, name, sec, frac, ver);
}

int sidetree_format(const struct sidetree_rec *r, char *buf, size_t n)
{
	char tmp[SIDETREE_TEXT_MAX * 2];
	int at = snprintf(tmp, sizeof(tmp), MAGIC " of=%" PRId64, r->of);
	if (r->link)
		at += snprintf(tmp + at, sizeof(tmp) - (size_t)at, " link");
	if (r->has_mode)
		at += snprintf(tmp + at, sizeof(tmp) - (size_t)at, " mode=%04o", r->mode & 07777);
	if (r->has_uid)
		at += snprintf(tmp + at, sizeof(tmp) - (size_t)at, " uid=%" PRIu32, r->uid);
	if (r->has_gid)
		at += snprintf(tmp + at, sizeof(tmp) - (size_t)at, " gid=%" PRIu32, r->gid);
	if (r->has_mtime)
		at += put_time(tmp + at, sizeof(tmp) - (size_t)at, "mtime", r->mtime_ns, r->mtime_ver);
	if (r->has_atime)
		at += put_time(tmp + at, sizeof(tmp) - (size_t)at, "atime", r->atime_ns, r->atime_ver);
	if (r->has_ctime)
		at += put_time(tmp + at, sizeof(tmp) - (size_t)at, "ctime", r->ctime_ns, -1);
	if (r->has_ino)
		at += snprintf(tmp + at, sizeof(tmp) - (size_t)at, " ino=%" PRIu64, r->ino);
	if (at < 0 || (size_t)at + 1 > n)
		return -1;
	memcpy(buf, tmp, (size_t)at + 1);
	return at;
}

/* SEC.NSEC@VER, or SEC.NSEC if ver is NULL. */
static bool get_time(const char *v, int64_t *ns, int32_t *ver)
{
	long long sec, frac;
	long version = 0;
	int used = 0;
	if (!ver && (sscanf(v, "%lld.%9lld%n", &sec, &frac, &used) != 2 || v[used] != '\0'))
		return false;
	if (ver && (sscanf(v, "%lld.%9lld@%ld%n", &sec, &frac, &version, &used) != 3 ||
		    v[used] != '\0'))
		return false;
	*ns = (int64_t)sec * 1000000000 + frac;
	if (ver)
		*ver = (int32_t)version;
	return true;
}

bool sidetree_parse(const void *data, int32_t len, struct sidetree_rec *r)
{
	memset(r, 0, sizeof(*r));
	if (!data || len < (int32_t)strlen(MAGIC) || len > SIDETREE_TEXT_MAX * 4)
		return false;
	char text[SIDETREE_TEXT_MAX * 4 + 1];
	memcpy(text, data, (size_t)len);
	text[len] = '\0';
	if (strncmp(text, MAGIC, strlen(MAGIC)) != 0)
		return false;
	bool have_of = false;
	char *save = NULL;
	for (char *w = strtok_r(text + strlen(MAGIC), " \n", &save); w;
	     w = strtok_r(NULL, " \n", &save)) {
		char *v = strchr(w, '=');
		if (v)
			*v++ = '\0';
		char *end = NULL;
		if (strcmp(w, "link") == 0 && !v) {
			r->link = true;
		} else if (!v) {
			continue;
		} else if (strcmp(w, "of") == 0) {
			r->of = strtoll(v, &end, 10);
			have_of = *v && *end == '\0';
		} else if (strcmp(w, "mode") == 0) {
			r->mode = (uint32_t)strtoul(v, &end, 8) & 07777;
			r->has_mode = *v && *end == '\0';
		} else if (strcmp(w, "uid") == 0) {
			r->uid = (uint32_t)strtoul(v, &end, 10);
			r->has_uid = *v && *end == '\0';
		} else if (strcmp(w, "gid") == 0) {
			r->gid = (uint32_t)strtoul(v, &end, 10);
			r->has_gid = *v && *end == '\0';
		} else if (strcmp(w, "mtime") == 0) {
			r->has_mtime = get_time(v, &r->mtime_ns, &r->mtime_ver);
		} else if (strcmp(w, "atime") == 0) {
			r->has_atime = get_time(v, &r->atime_ns, &r->atime_ver);
		} else if (strcmp(w, "ctime") == 0) {
			r->has_ctime = get_time(v, &r->ctime_ns, NULL);
		} else if (strcmp(w, "ino") == 0) {
			r->ino = (uint64_t)strtoull(v, &end, 10);
			r->has_ino = *v && *end == '\0' && r->ino >= 2;
		}
	}
	return have_of;
}
