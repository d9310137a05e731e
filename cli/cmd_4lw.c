/*
 * cmd_4lw: the four-letter words (srvr, mntr, conf, cons, wchs, ruok, isro,
 * dirs, envi, stat without a path, and any other through `4lw WORD`). The
 * word goes over a plain TCP connection to the first server of the list, or
 * to each with -a; no session is opened. Every connect and read is bounded
 * by --timeout.
 *
 * Output: the server's answer as it is (a newline added if it lacks one);
 * with -a each answer follows a line "# HOST:PORT". --json prints one object
 * per server and line: {"server":..,"response":..}, or for mntr
 * {"server":..,"metrics":{key: number or string}}.
 */
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "cli.h"

/* Connects to host:port within timeout_ms; returns the socket or -1 with
 * errno set. */
static int dial(const char *host, const char *port, int timeout_ms)
{
	struct addrinfo hints = { .ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM }, *ai, *p;
	int rc = getaddrinfo(host, port, &hints, &ai);
	if (rc != 0) {
		errno = EHOSTUNREACH;
		return -1;
	}
	int fd = -1, err = ECONNREFUSED;
	for (p = ai; p && fd < 0; p = p->ai_next) {
		fd = socket(p->ai_family, p->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
		if (fd < 0) {
			err = errno;
			continue;
		}
		if (connect(fd, p->ai_addr, p->ai_addrlen) < 0 && errno != EINPROGRESS) {
			err = errno;
			close(fd);
			fd = -1;
			continue;
		}
		struct pollfd pf = { .fd = fd, .events = POLLOUT };
		int soerr = 0;
		socklen_t sl = sizeof(soerr);
		rc = poll(&pf, 1, timeout_ms);
		if (rc <= 0 || getsockopt(fd, SOL_SOCKET, SO_ERROR, &soerr, &sl) < 0 || soerr) {
			err = rc == 0 ? ETIMEDOUT : soerr ? soerr : errno;
			close(fd);
			fd = -1;
		}
	}
	freeaddrinfo(ai);
	if (fd < 0)
		errno = err;
	return fd;
}

/* Sends the word and reads the answer until the server closes. Returns a
 * malloc'd NUL-terminated answer, or NULL with errno set. */
static char *ask(const char *host, const char *port, const char *word, int timeout_ms)
{
	int fd = dial(host, port, timeout_ms);
	if (fd < 0)
		return NULL;
	size_t cap = 4096, n = 0;
	char *buf = malloc(cap);
	if (!buf || send(fd, word, strlen(word), MSG_NOSIGNAL) != (ssize_t)strlen(word)) {
		int e = buf ? errno : ENOMEM;
		free(buf);
		close(fd);
		errno = e;
		return NULL;
	}
	for (;;) {
		struct pollfd pf = { .fd = fd, .events = POLLIN };
		int rc = poll(&pf, 1, timeout_ms);
		if (rc == 0) {
			errno = ETIMEDOUT;
			break;
		}
		if (n + 1 >= cap) {
			char *nb = cap < 16 * 1024 * 1024 ? realloc(buf, cap * 2) : NULL;
			if (!nb) {
				errno = ENOMEM;
				break;
			}
			buf = nb;
			cap *= 2;
		}
		ssize_t got = rc > 0 ? recv(fd, buf + n, cap - n - 1, 0) : -1;
		if (got < 0 && (errno == EINTR || errno == EAGAIN))
			continue;
		if (got == 0 || (got < 0 && errno == ECONNRESET && n > 0)) {
			close(fd);
			buf[n] = '\0';
			return buf;
		}
		if (got < 0)
			break;
		n += (size_t)got;
	}
	int e = errno;
	close(fd);
	free(buf);
	errno = e;
	return NULL;
}

/* Prints mntr's "key<TAB>value" lines as one JSON object. */
static void mntr_json(const char *answer)
{
	jw_obj();
	const char *p = answer;
	while (*p) {
		const char *eol = strchr(p, '\n'), *tab;
		size_t n = eol ? (size_t)(eol - p) : strlen(p);
		tab = memchr(p, '\t', n);
		if (tab) {
			char key[256], val[1024], *end;
			snprintf(key, sizeof(key), "%.*s", (int)(tab - p), p);
			snprintf(val, sizeof(val), "%.*s", (int)(n - (size_t)(tab - p) - 1), tab + 1);
			jw_key(key);
			errno = 0;
			long long v = strtoll(val, &end, 10);
			if (*val && !*end && !errno)
				jw_int(v);
			else
				jw_str(val);
		}
		p += n + (eol ? 1 : 0);
	}
	jw_end_obj();
}

int cmd_4lw(struct cli *cli, int argc, char **argv)
{
	bool all = false;
	int ch;
	const char *use = "WORD [-a] (srvr mntr conf cons wchs ruok isro dirs envi stat), "
			  "or 4lw [-a] WORD";
	while ((ch = cli_getopt(cli, argc, argv, "a")) != -1) {
		if (ch != 'a')
			return cli_usage(use);
		all = true;
	}
	const char *word = argv[0];
	if (strcmp(word, "4lw") == 0) {
		if (argc - optind != 1)
			return cli_usage(use);
		word = argv[optind];
	} else if (argc != optind) {
		return cli_usage(use);
	}
	if (strlen(word) != 4) {
		cli_err("4lw: '%s' is not a four-letter word", word);
		return EXIT_USAGE;
	}
	if (cli->hosts == NULL || *cli->hosts == '\0') {
		cli_err("no servers: use -s HOSTS or set QUORUM_SERVERS");
		return EXIT_USAGE;
	}
	/* The host list without its chroot. */
	char *list = strdup(cli->hosts), *save = NULL;
	if (!list)
		return EXIT_LOCAL;
	char *slash = strchr(list, '/');
	if (slash)
		*slash = '\0';
	int rc = EXIT_OK;
	for (char *h = strtok_r(list, ",", &save); h; h = all ? strtok_r(NULL, ",", &save) : NULL) {
		char *host = h, *port = NULL;
		if (*h == '[') {
			char *e = strchr(h, ']');
			if (!e) {
				cli_err("%s: bad server '%s'", word, h);
				rc = EXIT_USAGE;
				continue;
			}
			*e = '\0';
			host = h + 1;
			if (e[1] == ':')
				port = e + 2;
		} else if ((port = strrchr(h, ':')) != NULL) {
			*port++ = '\0';
		}
		char label[300];
		snprintf(label, sizeof(label), "%s:%s", host, port ? port : "2181");
		char *ans = ask(host, port ? port : "2181", word, (int)cli->timeout_ms);
		if (!ans) {
			cli_err("%s: %s: %s", word, label, strerror(errno));
			rc = EXIT_CONNECTION;
			continue;
		}
		if (cli->json) {
			jw_obj();
			jw_key("server"); jw_str(label);
			if (strcmp(word, "mntr") == 0) {
				jw_key("metrics"); mntr_json(ans);
			} else {
				jw_key("response"); jw_str(ans);
			}
			jw_end_obj(); jw_newline();
		} else {
			if (all)
				printf("# %s\n", label);
			size_t n = strlen(ans);
			fputs(ans, stdout);
			if (n == 0 || ans[n - 1] != '\n')
				putchar('\n');
		}
		free(ans);
	}
	free(list);
	return rc;
}
