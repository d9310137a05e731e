/*
 * check: quorumd --check DATADIR|CONFIG, an offline, read-only look at a
 * data directory: its snapshots, its log segments, what recovery would
 * rebuild from them, and a verdict (see check.c and quorumd(8)).
 */
#ifndef QUORUM_CHECK_H
#define QUORUM_CHECK_H

#include <stdio.h>

/* Writes the report to out; returns the exit status: 0 consistent, 1
 * damaged, 2 unreadable (no such directory, a bad config). */
int check_data_dir(const char *arg, FILE *out);

#endif
