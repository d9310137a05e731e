/*
 * fsbench: the latency of what a program reading its configuration does,
 * on any filesystem: open+read+close of a whole file, or stat, COUNT times
 * in a row, each timed alone. mount.py runs it on tmpfs, on a quorumfs
 * mount of quorumd and on one of ZooKeeper, and prints the ratios.
 *
 *     fsbench read|stat PATH COUNT
 *
 * Prints one line: "p50_us p99_us mean_us" (microseconds, one decimal).
 * The first tenth of the calls warms the caches and is not counted.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

static double now_us(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec * 1e6 + (double)ts.tv_nsec / 1e3;
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return x < y ? -1 : x > y;
}

/* One open+read+close of path into buf; the bytes read, or -1. */
static ssize_t read_whole(const char *path, char *buf, size_t cap)
{
	int fd = open(path, O_RDONLY);
	if (fd < 0)
		return -1;
	ssize_t total = 0, n;
	while ((n = read(fd, buf + total, cap - (size_t)total)) > 0)
		total += n;
	close(fd);
	return n < 0 ? -1 : total;
}

int main(int argc, char **argv)
{
	if (argc != 4 || (strcmp(argv[1], "read") != 0 && strcmp(argv[1], "stat") != 0)) {
		fprintf(stderr, "usage: fsbench read|stat PATH COUNT\n");
		return 2;
	}
	int is_read = strcmp(argv[1], "read") == 0;
	const char *path = argv[2];
	long count = strtol(argv[3], NULL, 10);
	if (count < 10 || count > 10000000) {
		fprintf(stderr, "fsbench: COUNT must be 10..10000000\n");
		return 2;
	}
	long warm = count / 10;
	static char buf[1 << 20];
	double *lat = malloc((size_t)count * sizeof(*lat));
	if (!lat) {
		fprintf(stderr, "fsbench: out of memory\n");
		return 1;
	}
	for (long i = 0; i < count; i++) {
		double t0 = now_us();
		int failed;
		if (is_read) {
			failed = read_whole(path, buf, sizeof(buf)) < 0;
		} else {
			struct stat st;
			failed = stat(path, &st) != 0;
		}
		double t1 = now_us();
		if (failed) {
			fprintf(stderr, "fsbench: %s %s: %s\n", argv[1], path, strerror(errno));
			free(lat);
			return 1;
		}
		lat[i] = t1 - t0;
	}
	long n = count - warm;
	double *v = lat + warm, sum = 0;
	for (long i = 0; i < n; i++)
		sum += v[i];
	qsort(v, (size_t)n, sizeof(*v), cmp_double);
	printf("%.1f %.1f %.1f\n", v[n / 2], v[(n * 99) / 100], sum / (double)n);
	free(lat);
	return 0;
}
