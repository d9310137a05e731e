/*
 * credentials: authentication read from a file, so that a password never
 * has to be on a command line (where ps(1) shows it to every user): auth
 * packets ("digest user:password") and a SASL login ("sasl user:password").
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "internal.h"
#include "log.h"

#define LINE_MAX_BYTES 4096

/* "sasl user:password": a SASL DIGEST-MD5 login (the user is up to the
 * first ':', so a password may hold one), as kazoo's auth_data takes it. */
static int add_sasl(struct qc_client *c, const char *path, int n, char *cred)
{
	char *colon = strchr(cred, ':');
	if (colon == NULL || colon == cred) {
		log_msg(LOG_ERROR, "client", "credentials %s:%d: expected sasl user:password",
			path, n);
		return ZBADARGUMENTS;
	}
	*colon = '\0';
	return qc_add_sasl_digest(c, cred, colon + 1);
}

int qc_add_auth_file(struct qc_client *c, const char *path)
{
	if (c == NULL || path == NULL)
		return ZBADARGUMENTS;
	FILE *f = fopen(path, "re");
	if (f == NULL) {
		log_msg(LOG_ERROR, "client", "credentials %s: %s", path, strerror(errno));
		return ZBADARGUMENTS;
	}
	struct stat st;
	if (fstat(fileno(f), &st) == 0 && (st.st_mode & 0077))
		log_msg(LOG_WARN, "client", "credentials %s: readable by others (mode %03o); "
			"chmod 600 it", path, (unsigned)(st.st_mode & 0777));
	char line[LINE_MAX_BYTES];
	int rc = ZOK, n = 0;
	while (rc == ZOK && fgets(line, sizeof(line), f)) {
		n++;
		size_t len = strlen(line);
		if (len == sizeof(line) - 1 && line[len - 1] != '\n') {
			log_msg(LOG_ERROR, "client", "credentials %s:%d: line too long", path, n);
			rc = ZBADARGUMENTS;
			break;
		}
		while (len > 0 && (line[len - 1] == '\n' || line[len - 1] == '\r'))
			line[--len] = '\0';
		char *s = line + strspn(line, " \t");
		if (*s == '\0' || *s == '#')
			continue;
		/* "SCHEME CREDENTIALS": the credentials are the rest of the line,
		 * spaces included. */
		size_t scheme_len = strcspn(s, " \t");
		char *cred = s + scheme_len;
		cred += strspn(cred, " \t");
		if (s[scheme_len] == '\0' || *cred == '\0') {
			log_msg(LOG_ERROR, "client", "credentials %s:%d: expected SCHEME "
				"CREDENTIALS (e.g. digest user:password)", path, n);
			rc = ZBADARGUMENTS;
			break;
		}
		s[scheme_len] = '\0';
		rc = strcmp(s, "sasl") == 0 ? add_sasl(c, path, n, cred)
					    : qc_add_auth(c, s, cred, (int32_t)strlen(cred));
		if (rc != ZOK)
			log_msg(LOG_ERROR, "client", "credentials %s:%d: %s: %s", path, n, s,
				qc_strerror(rc));
	}
	explicit_bzero(line, sizeof(line));
	fclose(f);
	return rc;
}
