/*
 * prefault: the heap's fresh pages faulted in on another core while one
 * thread fills the heap, as a big load does (a snapshot of a million
 * nodes grows it by hundreds of MB).
 *
 * A page the process touches for the first time is zeroed by the kernel
 * in the fault, on the touching thread. Under a hypervisor that backs a
 * guest's memory only when it is first used, that is most of what a load
 * costs (about 2 ms per 2 MiB huge page on the machines bench/ runs on,
 * half of a snapshot's load time); the JVM's AlwaysPreTouch exists for
 * the same reason. Between prefault_start() and prefault_stop(), glibc's
 * heap grows in big steps (M_TOP_PAD), and a helper thread asks the kernel
 * to populate each step's pages writable (MADV_POPULATE_WRITE: the same
 * zeroed pages the first write would get, without writing), lowest first,
 * just ahead of the filling thread. Nothing changes what memory holds, so
 * the helper may lose any race: a page the filler reaches first it faults
 * itself, as without the helper.
 *
 * Where the heap is not glibc's brk heap (a sanitizer's allocator,
 * valgrind's) or the kernel lacks MADV_POPULATE_WRITE (before 5.14), the
 * helper finds nothing to do and the load runs as it would without it.
 */
#ifndef QUORUM_PREFAULT_H
#define QUORUM_PREFAULT_H

#include <stdbool.h>
#include <stddef.h>

struct prefault;

/* Starts the helper for a fill of about `bytes` of heap, from the thread
 * that will fill it. NULL (and nothing started) when there is nothing to
 * gain: a small fill, no helper thread to be had. */
struct prefault *prefault_start(size_t bytes);

/* Stops and joins the helper, puts the heap's growth step back and gives
 * the unused part of the last step back to the kernel. p may be NULL. */
void prefault_stop(struct prefault *p);

/* For tests: the bytes the helper populated so far. */
size_t prefault_populated(const struct prefault *p);

#endif
