/*
 * regress: runs the fuzz entry point (fuzz_jute.c) over a corpus without
 * libFuzzer, so every input the fuzzer ever kept is a regression test in a
 * plain gcc build (meson test fuzz-corpus).
 *
 *     fuzz_regress DIR|FILE...
 *
 * A directory's files run in name order. Exits 1 if an argument cannot be
 * read or names no input at all; a failing input aborts in the entry point,
 * after its name was printed.
 */
#include <dirent.h>
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define MAX_INPUT_SIZE (16u << 20)

static int run_file(const char *path, size_t *runs)
{
	FILE *f = fopen(path, "rb");
	if (f == NULL) {
		fprintf(stderr, "fuzz_regress: %s: %s\n", path, strerror(errno));
		return -1;
	}
	uint8_t *buf = malloc(MAX_INPUT_SIZE);
	size_t n = buf ? fread(buf, 1, MAX_INPUT_SIZE, f) : 0;
	int bad = buf == NULL || ferror(f) || !feof(f);
	fclose(f);
	if (bad) {
		fprintf(stderr, "fuzz_regress: %s: cannot read it whole\n", path);
		free(buf);
		return -1;
	}
	fprintf(stderr, "fuzz_regress: %s (%zu bytes)\n", path, n);
	LLVMFuzzerTestOneInput(buf, n);
	free(buf);
	(*runs)++;
	return 0;
}

static int cmp_names(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

static int run_dir(const char *dir, size_t *runs)
{
	DIR *d = opendir(dir);
	if (d == NULL) {
		fprintf(stderr, "fuzz_regress: %s: %s\n", dir, strerror(errno));
		return -1;
	}
	char **names = NULL;
	size_t count = 0, cap = 0;
	int rc = 0;
	struct dirent *e;
	while ((e = readdir(d)) != NULL) {
		if (e->d_name[0] == '.')
			continue;
		if (count == cap) {
			cap = cap ? cap * 2 : 64;
			char **nn = realloc(names, cap * sizeof(*names));
			if (nn == NULL) {
				rc = -1;
				break;
			}
			names = nn;
		}
		if (asprintf(&names[count], "%s/%s", dir, e->d_name) < 0) {
			rc = -1;
			break;
		}
		count++;
	}
	closedir(d);
	qsort(names, count, sizeof(*names), cmp_names);
	for (size_t i = 0; i < count; i++) {
		struct stat st;
		if (rc == 0 && stat(names[i], &st) == 0 && S_ISREG(st.st_mode))
			rc = run_file(names[i], runs);
		free(names[i]);
	}
	free(names);
	return rc;
}

int main(int argc, char **argv)
{
	if (argc < 2) {
		fprintf(stderr, "usage: %s DIR|FILE...\n", argv[0]);
		return 2;
	}
	size_t runs = 0;
	for (int i = 1; i < argc; i++) {
		struct stat st;
		if (stat(argv[i], &st) != 0) {
			fprintf(stderr, "fuzz_regress: %s: %s\n", argv[i], strerror(errno));
			return 1;
		}
		if ((S_ISDIR(st.st_mode) ? run_dir(argv[i], &runs) : run_file(argv[i], &runs)) != 0)
			return 1;
	}
	if (runs == 0) {
		fprintf(stderr, "fuzz_regress: no inputs\n");
		return 1;
	}
	printf("fuzz_regress: %zu inputs ok\n", runs);
	return 0;
}
